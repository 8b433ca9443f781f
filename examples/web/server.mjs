// A reference BFF (backend for frontend) for Foothills, and the booking page it serves.
//
// The browser talks JSON to this server and never sees a token: each visitor's access and refresh
// tokens stay here, in memory, behind an opaque session cookie (httpOnly, SameSite=Strict, Secure
// when served over TLS). This server calls Foothills over gRPC with the TypeScript kit, one kit per
// visitor on one shared HTTP/2 connection, and turns Foothills' failure reasons into sentences a
// person reads. State-changing endpoints take only JSON from this origin (SameSite cookie, JSON
// content type, Origin checked), which keeps other sites from using a visitor's session.
//
//   FOOTHILLS_URL=http://127.0.0.1:50051 PORT=8080 node server.mjs
import { randomBytes, randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer } from "node:http";
import { extname, join } from "node:path";
import { connectFoothills, connection, decodeError } from "@foothills/client";

const PUBLIC = join(import.meta.dirname, "public");
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8" };
const COOKIE = "fh_session";
const SESSION_IDLE_MS = 12 * 3600_000;

// What a person reads for each reason Foothills gives; anything else gets the server's own message.
const SAID = {
  SLOT_UNAVAILABLE: "Sorry, that time is no longer free. Please pick another.",
  SLOT_ALREADY_BOOKED_BY_USER: "You have already booked this time.",
  OVERLAPPING_BOOKING: "You have another booking at that time.",
  PRICE_CHANGED: "The price changed while you were deciding. Please check the new price and book again.",
  MINIMUM_NOTICE: "That time is too soon to book; please pick a later one.",
  START_IN_PAST: "That time has already passed.",
  TOO_FAR_AHEAD: "That time is too far ahead to book yet.",
  USER_OVER_BOOKING_LIMIT: "You have reached the booking limit for this service.",
  OUTSIDE_CANCELLATION_WINDOW: "It is too late to cancel this booking online; please contact the provider.",
  INVALID_CREDENTIALS: "That email and password do not match an account.",
  EMAIL_TAKEN: "An account with that email already exists. Sign in instead?",
  LOGIN_THROTTLED: "Too many attempts. Please wait a little and try again.",
  ACCOUNT_DISABLED: "This account is disabled.",
  SERVICE_SUSPENDED: "This service is not taking bookings right now.",
  SERVICE_ARCHIVED: "This service is no longer offered.",
  INVALID_STATUS_TRANSITION: "This booking can no longer be changed.",
};
const HTTP_STATUS = { INVALID_ARGUMENT: 400, UNAUTHENTICATED: 401, PERMISSION_DENIED: 403, NOT_FOUND: 404,
                      ALREADY_EXISTS: 409, FAILED_PRECONDITION: 409, ABORTED: 409, RESOURCE_EXHAUSTED: 429 };

export function createBff({ foothillsUrl, trustProxy = false }) {
  const shared = connection(foothillsUrl);
  const sessions = new Map(); // session id -> { kit, seen }
  const anonymous = connectFoothills({ baseUrl: foothillsUrl, connection: shared });

  function visitor(request) {
    const id = cookies(request)[COOKIE];
    const found = id && sessions.get(id);
    if (!found || Date.now() - found.seen > SESSION_IDLE_MS) return undefined;
    found.seen = Date.now();
    return found;
  }

  function startSession(request, response, credentials) {
    const id = randomBytes(32).toString("base64url");
    const kit = connectFoothills({ baseUrl: foothillsUrl, connection: shared,
                                   onTokens: (tokens) => { if (!tokens) sessions.delete(id); } });
    kit.session.signedIn(credentials);
    sessions.set(id, { kit, seen: Date.now() });
    const secure = request.socket.encrypted || (trustProxy && request.headers["x-forwarded-proto"] === "https");
    response.setHeader("Set-Cookie", `${COOKIE}=${id}; Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`);
  }

  function endSession(request, response) {
    sessions.delete(cookies(request)[COOKIE]);
    response.setHeader("Set-Cookie", `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
  }

  // Each endpoint: (request, body, visitor) -> JSON-able answer; throws Foothills failures.
  const routes = {
    "GET /api/categories": async () => {
      const answer = await anonymous.catalog.listCategories({ pageSize: 100 });
      return { categories: answer.categories.map((c) => ({ name: c.name, displayName: c.displayName })) };
    },
    "GET /api/services": async (request) => {
      const query = new URL(request.url, "http://x").searchParams;
      const answer = await anonymous.catalog.listServices({
        query: query.get("query") ?? "", category: query.get("category") ?? "", pageSize: 50 });
      return { services: answer.services.map(serviceView) };
    },
    "GET /api/slots": async (request) => {
      const query = new URL(request.url, "http://x").searchParams;
      const from = new Date(query.get("from") ?? Date.now());
      const until = new Date(from.getTime() + 7 * 86400_000);
      const answer = await anonymous.catalog.listSlots({ service: query.get("service") ?? "",
                                                         startTime: timestamp(from), endTime: timestamp(until) });
      return { slots: answer.slots.map((s) => ({
        startTime: isoOf(s.startTime), endTime: isoOf(s.endTime), remainingSeats: s.remainingSeats,
        price: money(s.price?.totalPrice) })) };
    },
    "POST /api/signup": async (request, body, _, response) => {
      await anonymous.auth.register({ email: text(body.email), password: text(body.password),
                                      displayName: text(body.displayName) });
      const login = await anonymous.auth.login({ email: text(body.email), password: text(body.password) });
      startSession(request, response, login.credentials);
      return { user: userView(login.user) };
    },
    "POST /api/signin": async (request, body, _, response) => {
      const login = await anonymous.auth.login({ email: text(body.email), password: text(body.password) });
      startSession(request, response, login.credentials);
      return { user: userView(login.user) };
    },
    "POST /api/signout": async (request, _, me, response) => {
      if (me) await me.kit.auth.logout({}).catch(() => {}); // signed out here whatever Foothills says
      endSession(request, response);
      return {};
    },
    "GET /api/me": async (_, __, me) => ({ user: me ? userView((await me.kit.auth.getProfile({})).user) : null }),
    "GET /api/bookings": async (_, __, me) => {
      const answer = await signedIn(me).kit.booking.listBookings({ pageSize: 50 });
      const names = new Map(await Promise.all([...new Set(answer.bookings.map((b) => b.service))].map(
        async (service) => [service, (await anonymous.catalog.getService({ name: service })).service?.displayName])));
      return { bookings: answer.bookings.map((b) => ({ ...bookingView(b), serviceName: names.get(b.service) ?? "" })) };
    },
    "POST /api/bookings": async (_, body, me) => {
      const expected = body.expectedTotal;
      const answer = await signedIn(me).kit.booking.createBooking({
        service: text(body.service), startTime: timestamp(new Date(text(body.startTime))), seats: 1,
        requestId: text(body.requestId) || randomUUID(),
        expectedTotalPrice: expected ? { amountMinor: BigInt(expected.amountMinor), currencyCode: expected.currencyCode }
                                     : undefined });
      return { booking: bookingView(answer.booking) };
    },
    "POST /api/bookings/cancellation": async (_, body, me) => {
      // What cancelling now would cost, without cancelling (validate_only).
      const answer = await signedIn(me).kit.booking.cancelBooking({ name: text(body.name), validateOnly: true });
      return { fee: money(answer.booking?.cancellationFee) };
    },
    "POST /api/bookings/cancel": async (_, body, me) => {
      const answer = await signedIn(me).kit.booking.cancelBooking({ name: text(body.name),
                                                                    reason: text(body.reason) });
      return { booking: bookingView(answer.booking) };
    },
  };

  return createServer(async (request, response) => {
    response.setHeader("X-Content-Type-Options", "nosniff");
    response.setHeader("Referrer-Policy", "no-referrer");
    response.setHeader("Content-Security-Policy",
                       "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    const path = new URL(request.url, "http://x").pathname;
    const route = routes[`${request.method} ${path}`];
    if (!route) {
      return await serveFile(request, response, path);
    }
    const requestId = randomUUID();
    try {
      let body = {};
      if (request.method === "POST") {
        if (!sameOrigin(request) || !(request.headers["content-type"] ?? "").startsWith("application/json")) {
          return json(response, 403, { message: "Refused: this endpoint takes JSON from this site only." });
        }
        body = JSON.parse((await readBody(request)) || "{}");
      }
      return json(response, 200, await route(request, body, visitor(request), response));
    } catch (error) {
      if (error instanceof SignInFirst) return json(response, 401, { message: "Please sign in first." });
      if (error instanceof SyntaxError) return json(response, 400, { message: "The request was not valid JSON." });
      const failure = decodeError(error);
      if (failure.reason === "REFRESH_TOKEN_INVALID" || failure.reason === "REFRESH_TOKEN_REUSED"
          || failure.reason === "SESSION_REVOKED") {
        endSession(request, response);
        return json(response, 401, { message: "Your session ended. Please sign in again." });
      }
      const status = HTTP_STATUS[failure.code] ?? (failure.code === "UNAVAILABLE" ? 503 : 502);
      if (status >= 500) {
        // Not the visitor's doing, and not theirs to read (it may name hosts): logged here, said plainly.
        console.error(`foothills call failed request_id=${requestId}`, failure);
        return json(response, status, { message: status === 503
          ? "Booking is unavailable right now. Please try again in a moment."
          : `Something went wrong on our side. Please try again (reference ${requestId}).` });
      }
      return json(response, status, {
        reason: failure.reason, message: SAID[failure.reason] ?? sentence(failure.message),
        fields: failure.violations.map((v) => ({ field: v.field, message: sentence(v.description) })),
        ...(failure.reason === "PRICE_CHANGED" ? { newPrice: { amountMinor: failure.metadata.total_minor,
                                                                currencyCode: failure.metadata.currency_code } } : {}),
        requestId: failure.requestId,
      });
    }
  });
}

class SignInFirst extends Error {}

function signedIn(me) {
  if (!me) throw new SignInFirst();
  return me;
}

const isoOf = (t) => (t ? new Date(Number(t.seconds) * 1000 + Math.round(t.nanos / 1e6)).toISOString() : null);
const timestamp = (date) => ({ seconds: BigInt(Math.floor(date.getTime() / 1000)), nanos: 0 });
const money = (m) => (m ? { amountMinor: m.amountMinor.toString(), currencyCode: m.currencyCode } : null);
const text = (value) => (typeof value === "string" ? value : "");
const sentence = (message) => (message ? message[0].toUpperCase() + message.slice(1) + "." : "Something went wrong.");

const serviceView = (s) => ({ name: s.name, displayName: s.displayName, description: s.description,
                              capacity: s.capacity, timeZone: s.timeZone, price: money(s.basePrice),
                              minutes: Number(s.duration?.seconds ?? 0n) / 60 });
const userView = (u) => ({ name: u.name, email: u.email, displayName: u.displayName });
const STATUS = ["unspecified", "pending", "confirmed", "cancelled", "completed"];
const bookingView = (b) => ({ name: b.name, service: b.service, startTime: isoOf(b.startTime), seats: b.seats, status: STATUS[b.status] ?? "unknown",
                              price: money(b.price?.totalPrice), cancellationFee: money(b.cancellationFee) });

function cookies(request) {
  return Object.fromEntries((request.headers.cookie ?? "").split(";").map((part) => {
    const at = part.indexOf("=");
    return [part.slice(0, at).trim(), part.slice(at + 1).trim()];
  }));
}

function sameOrigin(request) {
  const origin = request.headers.origin;
  return !origin || new URL(origin).host === request.headers.host;
}

async function readBody(request) {
  let body = "";
  for await (const chunk of request) {
    body += chunk;
    if (body.length > 64 * 1024) throw new SyntaxError("body too large");
  }
  return body;
}

function json(response, status, value) {
  response.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
  response.end(JSON.stringify(value));
}

async function serveFile(request, response, path) {
  const name = path === "/" ? "index.html" : path.slice(1);
  if (request.method !== "GET" || !/^[a-z-]+\.(html|js|css)$/.test(name)) {
    response.writeHead(404, { "Content-Type": "text/plain" });
    return response.end("Not found");
  }
  try {
    const content = await readFile(join(PUBLIC, name));
    response.writeHead(200, { "Content-Type": TYPES[extname(name)] });
    response.end(content);
  } catch {
    response.writeHead(404, { "Content-Type": "text/plain" });
    response.end("Not found");
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const port = Number(process.env.PORT ?? 8080);
  const host = process.env.HOST ?? "127.0.0.1";
  createBff({ foothillsUrl: process.env.FOOTHILLS_URL ?? "http://127.0.0.1:50051",
              trustProxy: process.env.TRUST_PROXY === "true" })
    .listen(port, host, () => console.log(`booking page on http://${host}:${port}/`));
}
