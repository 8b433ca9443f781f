// A signed-in user's tokens, attached to every call; an access token that expired is refreshed once
// through RefreshToken and the call retried. Refresh tokens rotate: each is spent by its refresh (a
// reused one ends the whole session server-side), so concurrent calls share one refresh and the
// spent token is never sent again.
import { type Client, type Interceptor, type Transport, createClient } from "@connectrpc/connect";
import { AuthService, type Credentials } from "./gen/foothills/auth/v1/auth_pb.js";
import { hasReason } from "./errors.js";

export interface Tokens {
  accessToken: string;
  refreshToken: string;
}

export class Session {
  private tokens: Tokens | undefined;
  private refreshing: Promise<void> | undefined;
  private readonly auth: Client<typeof AuthService>;

  /** `transport` carries the RefreshToken calls (it needs no session of its own). */
  constructor(transport: Transport, private readonly onChange: (tokens: Tokens | undefined) => void = () => {}) {
    this.auth = createClient(AuthService, transport);
  }

  /** Keeps the credentials of a Login, Register-then-Login or RefreshToken answer. */
  signedIn(credentials: Credentials | undefined): void {
    this.set(credentials ? { accessToken: credentials.accessToken, refreshToken: credentials.refreshToken } : undefined);
  }

  signOut(): void {
    this.set(undefined);
  }

  get current(): Tokens | undefined {
    return this.tokens;
  }

  /** Adds `authorization: Bearer ...` to calls while signed in; refreshes once on TOKEN_EXPIRED. */
  readonly interceptor: Interceptor = (next) => async (request) => {
    const sent = this.tokens;
    if (sent) {
      request.header.set("authorization", `Bearer ${sent.accessToken}`);
    }
    try {
      return await next(request);
    } catch (error) {
      // A stream's request cannot be sent twice; its caller sees the error and calls again.
      if (!sent || request.stream || !hasReason(error, "TOKEN_EXPIRED")) {
        throw error;
      }
      await this.refresh(sent);
      if (!this.tokens) {
        throw error;
      }
      request.header.set("authorization", `Bearer ${this.tokens.accessToken}`);
      return await next(request);
    }
  };

  /** Rotates the tokens, once for every call that found `expired` stale. */
  private async refresh(expired: Tokens): Promise<void> {
    if (this.tokens !== expired) {
      return; // another call refreshed them meanwhile
    }
    this.refreshing ??= (async () => {
      try {
        const answer = await this.auth.refreshToken({ refreshToken: expired.refreshToken });
        this.signedIn(answer.credentials);
      } catch (error) {
        this.signOut(); // the refresh token is spent or revoked: the user signs in again
        throw error;
      } finally {
        this.refreshing = undefined;
      }
    })();
    await this.refreshing;
  }

  private set(tokens: Tokens | undefined): void {
    this.tokens = tokens;
    this.onChange(tokens);
  }
}
