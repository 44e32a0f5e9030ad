/** The claims of a JWT, or null when the token is not a readable JWT (an opaque token). */
export declare function decodeToken(token: string): Record<string, unknown> | null;
/** The user a token names (sub, else Better Auth's id claim), or null. */
export declare function tokenUser(token: string): string | null;
/** When the token expires, in milliseconds since the epoch; Infinity when it does not say. */
export declare function tokenExpiry(token: string): number;
/** Whether the token is past its exp (with skewMs of margin). */
export declare function tokenExpired(token: string, skewMs?: number): boolean;
