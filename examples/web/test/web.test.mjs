// The booking page in a real browser (Debian's Chromium, headless, through playwright-core), through
// the BFF, against a real Foothills server: a visitor signs up, books a slot at its shown price and
// cancels it after seeing the fee; gRPC confirms each step, and a second visitor sees the seats drop.
// Screenshots of the main steps go to artefacts/.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { connectFoothills, connection } from "@foothills/client";
import { chromium } from "playwright-core";
import { DEMO_PASSWORD, startServer } from "../../../clients/typescript/test/server.mjs";
import { createBff } from "../server.mjs";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARTEFACTS = join(import.meta.dirname, "..", "artefacts");
const SERVICE = `Pottery class ${Date.now().toString(36)}`;
const present = existsSync(CHROMIUM);
if (!present && process.env.CI === "true") {
  throw new Error(`no Chromium at ${CHROMIUM}: run scripts/setup-chromium`); // CI runs it, never skips it
}

let foothills;
let bff;
let browser;
let page;
let shared;

before(async () => {
  if (!present) return;
  foothills = await startServer({ accessTokenSeconds: 900 });
  shared = connection(foothills.baseUrl);
  await createService();
  bff = createBff({ foothillsUrl: foothills.baseUrl });
  await new Promise((done) => bff.listen(0, "127.0.0.1", done));
  page = `http://127.0.0.1:${bff.address().port}/`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  await mkdir(ARTEFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  bff?.close();
  shared?.abort();
  await foothills?.stop();
});

/** The provider's group class: four seats, every day, a 50 % fee for cancelling within ten days. */
async function createService() {
  const provider = connectFoothills({ baseUrl: foothills.baseUrl, connection: shared });
  provider.session.signedIn((await provider.auth.login({ email: foothills.provider, password: DEMO_PASSWORD })).credentials);
  const [category] = (await provider.catalog.listCategories({ pageSize: 1 })).categories;
  const { service } = await provider.catalog.createService({ service: {
    displayName: SERVICE, description: "Throw a bowl on the wheel.", category: category.name,
    duration: { seconds: 3600n }, capacity: 4, basePrice: { amountMinor: 4500n, currencyCode: "EUR" },
    timeZone: "Europe/Berlin",
    cancellationPolicy: { tiers: [{ beforeStart: { seconds: BigInt(10 * 86400) }, feeBps: 5000 }] } } });
  await provider.catalog.setAvailability({ availability: { name: `${service.name}/availability`,
    weeklyWindows: [1, 2, 3, 4, 5, 6, 7].map((day) => ({ dayOfWeek: day,
      hours: { startTime: { hours: 7 }, endTime: { hours: 21 } } })) } });
}

async function visit() {
  const context = await browser.newContext({ timezoneId: "America/New_York", locale: "en-US",
                                             viewport: { width: 1100, height: 900 } });
  const tab = await context.newPage();
  await tab.goto(page);
  await tab.locator("body[data-ready=true]").waitFor();
  return tab;
}

async function openWeek(tab) {
  await tab.getByLabel("Search").fill(SERVICE);
  await tab.getByRole("button", { name: "Search" }).click();
  await tab.getByRole("button", { name: `See times for ${SERVICE}` }).click();
  await tab.locator("#days button").first().waitFor();
}

const said = async (tab, text) => await tab.getByRole("status").filter({ hasText: text }).waitFor();
const slotButton = (tab, start) => tab.locator(`#days button[data-start="${start}"]`);

test("a visitor books a slot and cancels it through the page; another sees the seats drop", { skip: !present },
     async () => {
  const other = await visit();
  await openWeek(other);
  const first = other.locator("#days button:not([disabled])").first();
  const start = await first.getAttribute("data-start");
  assert.match(await first.getAttribute("aria-label"), /4 seats left/);

  const ann = await visit();
  await ann.getByLabel("Name").fill("Ann Lee");
  await ann.locator("#sign-up-form").getByLabel("Email").fill("ann.web@example.com");
  await ann.locator("#sign-up-form").getByLabel(/Password/).fill("a long enough passphrase");
  await ann.getByRole("button", { name: "Sign up" }).click();
  await said(ann, "Welcome, Ann Lee.");
  await openWeek(ann);
  await ann.screenshot({ path: join(ARTEFACTS, "1-week.png"), fullPage: true });
  await slotButton(ann, start).click();
  const book = ann.getByRole("button", { name: "Book for €45.00" });
  await book.waitFor();
  await ann.screenshot({ path: join(ARTEFACTS, "2-confirm-price.png") });
  await book.click();
  await said(ann, `Booked: ${SERVICE}`);
  await ann.screenshot({ path: join(ARTEFACTS, "3-booked.png"), fullPage: true });

  // Through gRPC, as Ann: the booking exists, confirmed, at that start, at the price shown.
  const kit = connectFoothills({ baseUrl: foothills.baseUrl, connection: shared });
  kit.session.signedIn((await kit.auth.login({ email: "ann.web@example.com", password: "a long enough passphrase" }))
    .credentials);
  let [booking] = (await kit.booking.listBookings({})).bookings;
  assert.equal(booking.status, 2); // BOOKING_STATUS_CONFIRMED
  assert.equal(new Date(Number(booking.startTime.seconds) * 1000).toISOString(), start);
  assert.equal(booking.price.totalPrice.amountMinor, 4500n);

  // The other visitor looks again: one seat fewer.
  await other.getByRole("button", { name: `See times for ${SERVICE}` }).click();
  await other.waitForFunction((s) => document.querySelector(`#days button[data-start="${s}"]`)
    ?.getAttribute("aria-label").includes("3 seats left"), start);

  // Ann sees the fee before cancelling, then cancels.
  await ann.getByRole("button", { name: new RegExp(`^Cancel ${SERVICE}`) }).click();
  await ann.getByText("Cancelling now costs €22.50.").waitFor();
  await ann.screenshot({ path: join(ARTEFACTS, "4-cancellation-fee.png") });
  await ann.getByRole("button", { name: "Cancel the booking" }).click();
  await said(ann, `Cancelled: ${SERVICE}`);
  await ann.screenshot({ path: join(ARTEFACTS, "5-cancelled.png"), fullPage: true });
  [booking] = (await kit.booking.listBookings({})).bookings;
  assert.equal(booking.status, 3); // BOOKING_STATUS_CANCELLED
  assert.equal(booking.cancellationFee.amountMinor, 2250n);
  await other.getByRole("button", { name: `See times for ${SERVICE}` }).click();
  await other.waitForFunction((s) => document.querySelector(`#days button[data-start="${s}"]`)
    ?.getAttribute("aria-label").includes("4 seats left"), start);
});

test("refusals read plainly, and the browser never holds a token", { skip: !present }, async () => {
  const tab = await visit();
  await tab.locator("#sign-in-form").getByLabel("Email").fill("nobody@example.com");
  await tab.locator("#sign-in-form").getByLabel("Password").fill("not the password at all");
  await tab.getByRole("button", { name: "Sign in" }).click();
  await said(tab, "That email and password do not match an account.");
  await tab.locator("#sign-in-form").getByLabel("Email").fill(foothills.customer);
  await tab.locator("#sign-in-form").getByLabel("Password").fill(DEMO_PASSWORD);
  await tab.getByRole("button", { name: "Sign in" }).click();
  await said(tab, "Welcome,");
  const cookies = await tab.context().cookies();
  assert.deepEqual(cookies.map((c) => [c.name, c.httpOnly, c.sameSite]), [["fh_session", true, "Strict"]]);
  const visible = await tab.evaluate(() => document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage));
  assert.doesNotMatch(visible, /eyJ|fh_session/); // no JWT, and the session cookie is out of the page's reach
  // A price that moved while the visitor looked is said plainly, with the new price.
  const session = `fh_session=${cookies[0].value}`;
  const { services } = await (await fetch(`${page}api/services?query=${encodeURIComponent(SERVICE)}`)).json();
  const { slots } = await (await fetch(`${page}api/slots?service=${encodeURIComponent(services[0].name)}`)).json();
  const moved = await fetch(`${page}api/bookings`, { method: "POST", headers: {
    "Content-Type": "application/json", Cookie: session }, body: JSON.stringify({
      service: services[0].name, startTime: slots.at(-1).startTime,
      expectedTotal: { amountMinor: "3900", currencyCode: "EUR" } }) });
  assert.equal(moved.status, 409);
  assert.deepEqual(await moved.json().then(({ requestId, ...rest }) => rest), {
    reason: "PRICE_CHANGED", fields: [], newPrice: { amountMinor: "4500", currencyCode: "EUR" },
    message: "The price changed while you were deciding. Please check the new price and book again." });
  // Another site cannot post as this visitor: JSON from this origin only.
  const forged = await fetch(`${page}api/bookings/cancel`, { method: "POST", headers: {
    "Content-Type": "text/plain", Cookie: `fh_session=${cookies[0].value}`, Origin: "https://evil.example" },
    body: "{}" });
  assert.equal(forged.status, 403);
});

test("with Foothills unreachable the page is told so plainly, without internal details", async () => {
  const lonely = createBff({ foothillsUrl: "http://127.0.0.1:9" }); // the discard port: nothing listens
  await new Promise((done) => lonely.listen(0, "127.0.0.1", done));
  try {
    const answer = await fetch(`http://127.0.0.1:${lonely.address().port}/api/categories`);
    assert.equal(answer.status, 503);
    assert.deepEqual(await answer.json(),
                     { message: "Booking is unavailable right now. Please try again in a moment." });
  } finally {
    lonely.close();
  }
});
