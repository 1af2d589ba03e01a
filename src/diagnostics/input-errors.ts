// Which failures are the user's input (their files, data, command line or machine) rather than
// qalc's bugs: each is printed as one line, exit status 1. Every other error is a bug (exit 2).
// Errors are told apart by name, so this module imports none of the stages that throw them.
const INPUT_ERRORS = new Set([
  'RunLockedError', 'CheckpointError', 'TokenizerError', 'SafetensorsError', 'TrainingError', 'DataError', 'UnsupportedPlanError', 'GenerationError', 'ScaleRangeError',
  'HessianError', 'BackendUnavailableError', 'ExportError', 'GgufExportError', 'PeftExportError',
]);

export function isInputError(e: unknown): e is Error {
  return e instanceof Error && INPUT_ERRORS.has(e.name);
}
