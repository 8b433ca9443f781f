// Foothills answers every failure with a gRPC code and a google.rpc.ErrorInfo whose `reason` says
// exactly what went wrong (the protos list each RPC's reasons); bad input also carries a BadRequest
// with every bad field, and overload a RetryInfo. decodeError turns any thrown value into that.
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

export interface FieldViolation {
  /** The request field, as a path: `service.booking_settings.minimum_notice`. */
  field: string;
  description: string;
  /** A machine-readable kind, e.g. `TOO_MANY`, `INVALID_VALUE`. */
  reason: string;
}

export interface FoothillsError {
  /** The gRPC code's name: `INVALID_ARGUMENT`, `FAILED_PRECONDITION`, ... */
  code: string;
  message: string;
  /** ErrorInfo.reason, e.g. `SLOT_UNAVAILABLE`, `PRICE_CHANGED`, `TOKEN_EXPIRED`; "" when none came. */
  reason: string;
  /** ErrorInfo.metadata, e.g. `{ total_minor: "5200", currency_code: "EUR" }` with PRICE_CHANGED. */
  metadata: Record<string, string>;
  violations: FieldViolation[];
  /** From RetryInfo: how long to wait before trying again, when the server said. */
  retryAfterMs?: number;
  /** The call's `x-request-id`, to quote when asking for help. */
  requestId?: string;
}

/** The gRPC code's canonical name (`Code.InvalidArgument` -> `INVALID_ARGUMENT`). */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export function decodeError(error: unknown): FoothillsError {
  const failure = ConnectError.from(error);
  const [info] = failure.findDetails(ErrorInfoSchema);
  const [badRequest] = failure.findDetails(BadRequestSchema);
  const [retry] = failure.findDetails(RetryInfoSchema);
  const decoded: FoothillsError = {
    code: codeName(failure.code),
    message: failure.rawMessage,
    reason: info?.reason ?? "",
    metadata: { ...(info?.metadata ?? {}) },
    violations: (badRequest?.fieldViolations ?? []).map((v) => ({
      field: v.field, description: v.description, reason: v.reason,
    })),
  };
  if (retry?.retryDelay) {
    decoded.retryAfterMs = Number(retry.retryDelay.seconds) * 1000 + Math.round(retry.retryDelay.nanos / 1e6);
  }
  const requestId = failure.metadata.get("x-request-id");
  if (requestId) {
    decoded.requestId = requestId;
  }
  return decoded;
}

/** Whether `error` is a Foothills failure with this reason. */
export function hasReason(error: unknown, reason: string): boolean {
  return decodeError(error).reason === reason;
}
