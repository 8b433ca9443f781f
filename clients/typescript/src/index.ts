// The Foothills client kit: typed clients of the four services over gRPC (HTTP/2), with the
// session's tokens, request ids, error decoding and paging a BFF would otherwise write itself.
// RefreshToken goes through a transport without the session (it needs none), on the same connection.
import { type Client, type Interceptor, createClient } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { AdminService } from "./gen/foothills/admin/v1/admin_pb.js";
import { AuthService } from "./gen/foothills/auth/v1/auth_pb.js";
import { BookingService } from "./gen/foothills/booking/v1/booking_pb.js";
import { CatalogService } from "./gen/foothills/catalog/v1/catalog_pb.js";
import { requestIds } from "./request-id.js";
import { Session, type Tokens } from "./session.js";

export { codeName, decodeError, hasReason, type FieldViolation, type FoothillsError } from "./errors.js";
export { items, pages } from "./pages.js";
export { requestIds } from "./request-id.js";
export { Session, type Tokens } from "./session.js";
export { AdminService, AuthService, BookingService, CatalogService };

export interface FoothillsOptions {
  /** Where Foothills listens: `http://localhost:50051` (or `https://...` with TLS). */
  baseUrl: string;
  /** The HTTP/2 connection to share: a BFF makes one and passes it to every visitor's kit. */
  connection?: Http2SessionManager;
  /** Told whenever the tokens change (signed in, refreshed, signed out), e.g. to store them server-side. */
  onTokens?: (tokens: Tokens | undefined) => void;
  /** Run before the kit's own (outermost first). */
  interceptors?: Interceptor[];
}

export interface Foothills {
  auth: Client<typeof AuthService>;
  catalog: Client<typeof CatalogService>;
  booking: Client<typeof BookingService>;
  admin: Client<typeof AdminService>;
  session: Session;
}

/** One connection to Foothills, for `FoothillsOptions.connection`. */
export function connection(baseUrl: string): Http2SessionManager {
  return new Http2SessionManager(baseUrl);
}

/** Clients of every service for one user's session (signed out until `session.signedIn`). */
export function connectFoothills(options: FoothillsOptions): Foothills {
  const sessionManager = options.connection ?? connection(options.baseUrl);
  const plain = createGrpcTransport({ baseUrl: options.baseUrl, sessionManager });
  const session = new Session(plain, options.onTokens);
  const transport = createGrpcTransport({
    baseUrl: options.baseUrl, sessionManager,
    interceptors: [...(options.interceptors ?? []), requestIds(), session.interceptor],
  });
  return {
    auth: createClient(AuthService, transport),
    catalog: createClient(CatalogService, transport),
    booking: createClient(BookingService, transport),
    admin: createClient(AdminService, transport),
    session,
  };
}
