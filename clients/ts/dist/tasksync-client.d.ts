export declare function createClient(options: unknown): never;
