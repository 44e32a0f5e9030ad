/** Options of {@link betterAuthToken}. */
export interface BetterAuthTokenOptions {
    /**
     * Where Better Auth is mounted: the app's origin, e.g.
     * "https://app.example.com" (the token comes from {baseURL}/api/auth/token).
     * "" means the page's own origin.
     */
    baseURL: string;
    /** The fetch to use (default globalThis.fetch). */
    fetch?: typeof fetch;
    /**
     * Whether the session cookie is sent (default "include", which a page on
     * another origin than Better Auth needs; Better Auth must then allow that
     * origin in its trustedOrigins).
     */
    credentials?: RequestCredentials;
    /**
     * Extra request headers, or a function returning them at each request.
     * In Node, where fetch keeps no cookies, pass the session cookie here:
     * `headers: { cookie: "better-auth.session_token=..." }`.
     */
    headers?: Record<string, string> | (() => Record<string, string>);
    /** Path of the token endpoint under baseURL (default "/api/auth/token"). */
    path?: string;
    /**
     * A cached token is fetched again when less than this is left of it
     * (default 60 000 ms, at most half the token's lifetime, so that 10-second
     * tokens are reused for 5 seconds). Keep it at least the client's
     * refreshBeforeMs, so that a refresh gets a newer token.
     */
    refreshBeforeMs?: number;
}
/**
 * A getToken function for createClient: resolves to a current JWT, or null
 * when there is no session (Better Auth answered 401: signed out). Other
 * failures (network, 5xx) reject, so that the client retries later, unless
 * the cached token is still valid, which is then returned.
 */
export interface BetterAuthGetToken {
    (): Promise<string | null>;
    /** Forgets the cached token: the next call fetches one (after a sign-in, a sign-out or a refused token). */
    clear(): void;
    /** Caches a token obtained elsewhere, e.g. {@link tokenFromSetAuthJwt} of a getSession response. */
    set(token: string | null): void;
}
/** Returns a getToken function that reads Better Auth's /api/auth/token with the session cookie. */
export declare function betterAuthToken(options: BetterAuthTokenOptions): BetterAuthGetToken;
/**
 * The JWT that Better Auth's jwt() plugin puts in the `set-auth-jwt` header
 * of a getSession response (`authClient.getSession({ fetchOptions: {
 * onSuccess: (ctx) => ... } })`), or null when there is none. Across
 * origins the header is only readable when Better Auth's CORS exposes it
 * (Access-Control-Expose-Headers: set-auth-jwt).
 */
export declare function tokenFromSetAuthJwt(response: Response | {
    headers: Headers;
} | Headers): string | null;
/** When a JWT expires, in milliseconds since the epoch (null: not a JWT, or no exp). */
export declare function tokenExpiresAt(token: string): number | null;
