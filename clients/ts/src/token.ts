// Reading a JWT's claims without verifying it: the server verifies; the
// client only wants to know whom a token names and when it expires, so that
// it asks for a new one instead of offering an expired one.

/** The claims of a JWT, or null when the token is not a readable JWT (an opaque token). */
export function decodeToken(token: string): Record<string, unknown> | null {
  const parts = token.trim().split(".");
  if (parts.length !== 3) return null;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
    const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The user a token names (sub, else Better Auth's id claim), or null. */
export function tokenUser(token: string): string | null {
  const c = decodeToken(token);
  const sub = c?.sub ?? c?.id;
  return typeof sub === "string" && sub !== "" ? sub : null;
}

/** When the token expires, in milliseconds since the epoch; Infinity when it does not say. */
export function tokenExpiry(token: string): number {
  const exp = decodeToken(token)?.exp;
  return typeof exp === "number" ? exp * 1000 : Infinity;
}

/** Whether the token is past its exp (with skewMs of margin). */
export function tokenExpired(token: string, skewMs = 0): boolean {
  return Date.now() + skewMs >= tokenExpiry(token);
}
