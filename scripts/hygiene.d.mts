// Types of hygiene.mjs, for test/hygiene.test.ts.
export declare const LAYERS: string[][];
export declare function unusedExports(): string[];
export declare function layerViolations(): string[];
export declare function tsPrivateMembers(): string[];
export declare function publicMembers(name: string): string[];
