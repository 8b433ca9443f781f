// Every List RPC pages the same way: `page_size` and `page_token` in, `next_page_token` out ("" on
// the last page). These walk all pages of any of them.

/** Each page of a List RPC, from the first (or `request.pageToken`) to the last. */
export async function* pages<Request extends { pageToken?: string }, Page extends { nextPageToken: string }>(
  list: (request: Request) => Promise<Page>, request: Request,
): AsyncGenerator<Page> {
  let pageToken = request.pageToken ?? "";
  do {
    const page = await list({ ...request, pageToken });
    yield page;
    pageToken = page.nextPageToken;
  } while (pageToken);
}

/** Every item of a List RPC across its pages: `items(catalog.listServices, {pageSize: 50}, (p) => p.services)`. */
export async function* items<Request extends { pageToken?: string }, Page extends { nextPageToken: string }, Item>(
  list: (request: Request) => Promise<Page>, request: Request, of: (page: Page) => Item[],
): AsyncGenerator<Item> {
  for await (const page of pages(list, request)) {
    yield* of(page);
  }
}
