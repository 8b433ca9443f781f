// The kit against a real Foothills server: sign-up, sign-in, browse, book, a refusal decoded to its
// reason, a refresh with rotation, pagination, request ids.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { timestampFromDate, timestampDate } from "@bufbuild/protobuf/wkt";
import { connectFoothills, connection, decodeError, items, pages } from "../dist/index.js";
import { DEMO_PASSWORD, startServer } from "./server.mjs";

let server;
let shared;
before(async () => {
  server = await startServer();
  shared = connection(server.baseUrl);
});
after(async () => {
  shared.abort();
  await server.stop();
});

const kit = (options = {}) => connectFoothills({ baseUrl: server.baseUrl, connection: shared, ...options });
const rejection = async (call) => decodeError(await call.then(() => assert.fail("the call succeeded"), (e) => e));

test("a visitor signs up, signs in and reads their profile", async () => {
  const { auth, session } = kit();
  const registered = await auth.register({ email: "kit@example.com", password: "a long enough passphrase",
                                           displayName: "Kit" });
  assert.equal(registered.user.email, "kit@example.com");
  session.signedIn((await auth.login({ email: "kit@example.com", password: "a long enough passphrase" })).credentials);
  const profile = await auth.getProfile({});
  assert.equal(profile.user.displayName, "Kit");
});

test("bad input is decoded to every bad field at once", async () => {
  const failure = await rejection(kit().auth.register({ email: "not an email", password: "short", displayName: "" }));
  assert.equal(failure.code, "INVALID_ARGUMENT");
  assert.deepEqual(failure.violations.map((v) => v.field).sort(), ["display_name", "email", "password"]);
  assert.ok(failure.requestId, "the call's x-request-id comes back with the failure");
});

test("a signed-in customer browses, books a slot at its price and sees a refusal's reason", async () => {
  const { auth, catalog, booking, session } = kit();
  session.signedIn((await auth.login({ email: server.customer, password: DEMO_PASSWORD })).credentials);
  const [service] = (await catalog.listServices({ pageSize: 1 })).services;
  const from = new Date(Date.now() + 2 * 3600_000);
  const listing = await catalog.listSlots({ service: service.name, startTime: timestampFromDate(from),
                                            endTime: timestampFromDate(new Date(from.getTime() + 7 * 86400_000)) });
  const slot = listing.slots.find((s) => s.remainingSeats > 0);
  assert.ok(slot, "the demo service has a free slot this week");
  const booked = await booking.createBooking({ service: service.name, startTime: slot.startTime, seats: 1,
                                               requestId: crypto.randomUUID(),
                                               expectedTotalPrice: slot.price.totalPrice });
  assert.equal(booked.booking.service, service.name);
  assert.deepEqual(timestampDate(booked.booking.startTime), timestampDate(slot.startTime));
  const again = await rejection(booking.createBooking({ service: service.name, startTime: slot.startTime, seats: 1,
                                                        requestId: crypto.randomUUID() }));
  assert.equal(again.code, "FAILED_PRECONDITION");
  assert.ok(["SLOT_ALREADY_BOOKED_BY_USER", "SLOT_UNAVAILABLE"].includes(again.reason), again.reason);
  const offGrid = await rejection(booking.createBooking({
    service: service.name, requestId: crypto.randomUUID(),
    startTime: timestampFromDate(new Date(timestampDate(slot.startTime).getTime() + 60_000)) }));
  assert.deepEqual([offGrid.code, offGrid.reason], ["FAILED_PRECONDITION", "SLOT_UNAVAILABLE"]);
});

test("an expired access token is refreshed once, the refresh token rotates, and the spent one stays spent",
     async () => {
  const changes = [];
  const { auth, session } = kit({ onTokens: (tokens) => changes.push(tokens) });
  session.signedIn((await auth.login({ email: server.customer, password: DEMO_PASSWORD })).credentials);
  const first = session.current;
  await new Promise((done) => setTimeout(done, 3500)); // the server issues 3-second access tokens here
  const [a, b] = await Promise.all([auth.getProfile({}), auth.getProfile({})]); // both find it expired
  assert.equal(a.user.email, server.customer);
  assert.equal(b.user.email, server.customer);
  assert.equal(changes.length, 2, "one sign-in and one refresh, not one per call");
  assert.notEqual(session.current.refreshToken, first.refreshToken);
  const reused = await rejection(kit().auth.refreshToken({ refreshToken: first.refreshToken }));
  assert.deepEqual([reused.code, reused.reason], ["UNAUTHENTICATED", "REFRESH_TOKEN_REUSED"]);
});

test("pages and items walk every page of a List RPC", async () => {
  const { catalog } = kit();
  const all = (await catalog.listServices({ pageSize: 100 })).services.map((s) => s.name);
  assert.equal(all.length, 6);
  const seen = [];
  for await (const page of pages(catalog.listServices, { pageSize: 4 })) {
    seen.push(page.services.length);
  }
  assert.deepEqual(seen, [4, 2]);
  const walked = [];
  for await (const service of items(catalog.listServices, { pageSize: 4 }, (page) => page.services)) {
    walked.push(service.name);
  }
  assert.deepEqual(walked, all);
});
