// The frames function's timeout as a plain number, apart from infra/stack.ts (which says why it is
// what it is) so that the local emulator and the bench can run with it without loading the CDK.

/** The frames function's timeout on AWS (infra/stack.ts FRAMES_TIMEOUT). */
export const FRAMES_TIMEOUT_SECONDS = 15;
