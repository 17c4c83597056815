/**
 * The shape of the regex filter engine's `ResolvedFilterDefinition`, written out here so that
 * `regex/filter-definition.ts` can import this module without an import cycle (the types are
 * structurally the same; the compiler checks the assignment there).
 */

/** A pattern and where it was written, for error messages. */
export interface Fail2banRegexSource {
  source: string;
  where: string;
}

/** What a fail2ban filter file translates to. */
export interface Fail2banDefinition {
  name: string;
  description: string;
  mode: string;
  modes: readonly string[];
  prefregex: Fail2banRegexSource | undefined;
  failregex: readonly Fail2banRegexSource[];
  ignoreregex: readonly Fail2banRegexSource[];
  datepattern: Fail2banRegexSource | undefined;
  maxlines: number;
  vars: Readonly<Record<string, string>>;
  /** fail2ban cuts only the date's own text from a line. */
  dateCut: 'exact';
}
