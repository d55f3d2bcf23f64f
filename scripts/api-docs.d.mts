/** docs/api.md for the package built in `root`, and what it could not fill in (scripts/api-docs.mjs). */
export function apiDocs(root: URL): Promise<{ markdown: string; missingDefaults: string[]; undocumentedCodes: string[]; unexportedTypes: string[] }>;
