/**
 * citty's case conversions, as the bundled bins use them (tsup.bins.config.ts puts
 * citty-scule.ts where citty imports its copy of scule). citty's parseArgs converts every
 * option name a command declares (~100 for `criu dump`) to camel and kebab case, and its
 * argument proxy converts each name asked of it that the command line did not set: scule does
 * it a character at a time (a regular expression and a toLowerCase each), 5-12 ms of every
 * command at load.
 *
 * crtools' option names are lowercase words joined by '-' (`leave-running`, `v4`): for such a
 * name the kebab form is the name and the camel form its words joined with each one's first
 * letter in upper case, which two native regular expressions give. Every other string goes to
 * scule itself, so citty sees exactly what scule would answer (test/case-forms.test.ts compares
 * the two over every option name of every command, and over strings of other shapes).
 */
export interface CaseForms {
  kebabCase(str?: unknown, joiner?: string): string;
  camelCase(str?: unknown, opts?: { normalize?: boolean }): string;
  snakeCase(str?: unknown): string;
}

const PLAIN = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;
const DASHED = /-([a-z0-9])/g;

function upper(_: string, c: string): string {
  return c.toUpperCase();
}

/** scule's conversions with the plain names answered without it. */
export function plainCaseForms(scule: CaseForms): CaseForms {
  return {
    kebabCase: (str, joiner) => (joiner === undefined && typeof str === 'string' && PLAIN.test(str) ? str : scule.kebabCase(str, joiner)),
    camelCase: (str, opts) => (typeof str === 'string' && PLAIN.test(str) ? (str.includes('-') ? str.replace(DASHED, upper) : str) : scule.camelCase(str, opts)),
    snakeCase: (str) => scule.snakeCase(str),
  };
}
