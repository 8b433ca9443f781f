// Every call carries an `x-request-id` (the caller's, or a fresh UUID), which the server logs and
// returns: quote it when asking for help, or pass a browser's on to tie the two logs together.
import type { Interceptor } from "@connectrpc/connect";

export function requestIds(make: () => string = () => crypto.randomUUID()): Interceptor {
  return (next) => async (request) => {
    if (!request.header.has("x-request-id")) {
      request.header.set("x-request-id", make());
    }
    return await next(request);
  };
}
