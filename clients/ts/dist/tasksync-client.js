// Placeholder of the SDK bundle (branch i10-int only): the real build output
// from clients/ts/src replaces it when the SDK branch is merged.
export function createClient() {
  throw new Error("placeholder: the SDK build is not merged yet");
}
