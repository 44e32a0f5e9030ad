// Hand-written stand-in for the types generated from docs/schemas by
// scripts/gen-types.mjs (branch i10-schemas). Replaced by the generated file.
export {};
