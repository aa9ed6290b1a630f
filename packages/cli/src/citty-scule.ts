// What citty's `import ... from "./_chunks/libs/scule.mjs"` gets in the bundled bins
// (tsup.bins.config.ts): scule's conversions with crtools' plain option names answered
// without it (case-forms.ts). citty imports scule's minified export names: t camelCase,
// n kebabCase, r snakeCase; the plugin checks citty still imports exactly these.
// @ts-expect-error: resolved by the bundler's plugin to citty's own copy of scule
import { t as camelCase, n as kebabCase, r as snakeCase } from 'crtools:citty-scule';
import { plainCaseForms } from './case-forms.js';

const forms = plainCaseForms({ camelCase, kebabCase, snakeCase });
export const t = forms.camelCase;
export const n = forms.kebabCase;
export const r = forms.snakeCase;
