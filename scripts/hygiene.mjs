// Checks that keep src/ tidy, run by test/hygiene.test.ts (and by `node scripts/hygiene.mjs`), read
// from the TypeScript compiler's view of the tree:
//  - unusedExports(): every export of src/** that no file of src, test, bench, demo or scripts
//    imports, and that src/index.ts ("sluice") and src/internal.ts ("sluice/internal") do not
//    re-export; and every export of src/internal.ts that no test or benchmark imports. An export only
//    its own file uses should not be exported; one nobody uses should not exist. A type (interface or
//    type alias) is also in use when another export of its file names it: it is part of that
//    export's shape (a constructor's parameter, a method's answer) and is exported to be nameable.
//  - layerViolations(): src/'s folders are layers, each importing only from the layers below it
//    (LAYERS), so no import goes up and no two folders import each other; no files import each other
//    in a circle either (type-only imports count); src/ imports nothing but src/, build/ (the
//    generated core) and node: built-ins.
//  - tsPrivateMembers(): members marked with TypeScript's `private`, which JavaScript does not
//    enforce; src/ uses `#` fields and methods.
import { readdirSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const SCANNED = ["src", "test", "bench", "demo", "scripts"];
const ENTRIES = ["src/index.ts", "src/internal.ts"];

/**
 * src/'s layers, bottom first. A folder may import from the layers before its own, never from its
 * own rank's other folders or anything after: handshake and reliable are siblings over the wire layer
 * (the reliable Session sizes its packets by the wire's limits), the rendezvous reads and writes the
 * control frames the Session carries, and the transport drives them all. The CLI sits on the public
 * entry alone.
 */
export const LAYERS = [["errors"], ["memory"], ["channel"], ["wire"], ["handshake", "reliable"], ["rendezvous"], ["transport"], ["index.ts", "internal.ts"], ["cli"]];

function sourceFiles(dir) {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && /\.(ts|mts|mjs)$/.test(entry.name) && !entry.name.endsWith(".d.ts"))
    .map((entry) => join(entry.parentPath ?? entry.path, entry.name))
    .filter((file) => !file.split(sep).includes("node_modules"));
}

let cached;
/** One program over every scanned file (.mjs as JavaScript), resolved as tsconfig.json resolves. */
function program() {
  if (cached) return cached;
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, "tsconfig.json"), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const files = SCANNED.flatMap(sourceFiles);
  const built = ts.createProgram(files, { ...config.options, allowJs: true, checkJs: false, noEmit: true });
  cached = { program: built, checker: built.getTypeChecker(), files: new Set(files) };
  return cached;
}

const rel = (file) => relative(ROOT, file).split(sep).join("/");

/** The file a module specifier resolves to (undefined for a package or a built-in). */
function target(checker, specifier) {
  const declaration = checker.getSymbolAtLocation(specifier)?.valueDeclaration;
  return declaration !== undefined && ts.isSourceFile(declaration) ? declaration.fileName : undefined;
}

/** Every import and re-export in `source`: [specifier node, names taken ("*" for a namespace: its properties used), re-exported as]. */
function* moduleReferences(source) {
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause;
      const names = [];
      if (clause?.name) names.push(["default"]);
      const bindings = clause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) for (const spec of bindings.elements) names.push([(spec.propertyName ?? spec.name).text]);
      if (bindings && ts.isNamespaceImport(bindings)) {
        const namespace = bindings.name.text;
        const visit = (node) => {
          if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === namespace) names.push([node.name.text]);
          ts.forEachChild(node, visit);
        };
        visit(source);
      }
      yield [statement.moduleSpecifier, names];
    } else if (ts.isExportDeclaration(statement) && statement.moduleSpecifier) {
      const clause = statement.exportClause;
      const names = clause && ts.isNamedExports(clause)
        ? clause.elements.map((spec) => [(spec.propertyName ?? spec.name).text, spec.name.text])
        : [["*", "*"]];
      yield [statement.moduleSpecifier, names];
    }
  }
}

/** "file: name" for every unused export (see the top of this file), sorted. */
export function unusedExports() {
  const { program: built, checker, files } = program();
  const used = new Map(); // file → names imported from it
  const reexports = []; // [from file, name there, to file, name in to]
  const internalImported = new Set();
  const use = (file, name) => {
    if (!used.has(file)) used.set(file, new Set());
    const names = used.get(file);
    if (names.has(name)) return false;
    names.add(name);
    return true;
  };
  for (const source of built.getSourceFiles()) {
    if (!files.has(source.fileName)) continue;
    for (const [specifier, names] of moduleReferences(source)) {
      const to = target(checker, specifier);
      if (to === undefined) continue;
      const isInternal = rel(to) === "src/internal.ts";
      for (const [name, exportedAs] of names) {
        if (exportedAs === undefined) {
          use(to, name);
          if (isInternal && !rel(source.fileName).startsWith("src/")) internalImported.add(name);
        } else reexports.push([source.fileName, exportedAs, to, name]);
      }
    }
  }
  const exportsOf = (file) => {
    const symbol = checker.getSymbolAtLocation(built.getSourceFile(file));
    return symbol ? checker.getExportsOfModule(symbol).map((exported) => exported.name) : [];
  };
  for (const entry of ENTRIES) for (const name of exportsOf(join(ROOT, entry))) use(join(ROOT, entry), name);
  // A re-export is a use of what it re-exports once the re-export itself is used.
  for (let changed = true; changed;) {
    changed = false;
    for (const [from, name, to, original] of reexports) {
      if (used.get(from)?.has(name) || used.get(from)?.has("*")) changed = use(to, original) || changed;
    }
  }
  const unused = [];
  for (const file of files) {
    if (!rel(file).startsWith("src/")) continue;
    const shapes = typesNamedByExports(checker, built.getSourceFile(file));
    for (const name of exportsOf(file)) if (!used.get(file)?.has(name) && !shapes.has(name)) unused.push(`${rel(file)}: ${name}`);
  }
  for (const name of exportsOf(join(ROOT, "src/internal.ts"))) {
    if (!internalImported.has(name)) unused.push(`src/internal.ts: ${name} (no test or benchmark imports it)`);
  }
  return unused.sort();
}

/** The names of the exported types of `source` that another exported declaration of it names. */
function typesNamedByExports(checker, source) {
  const exported = source.statements.filter((statement) => ts.getCombinedModifierFlags(statement) & ts.ModifierFlags.Export);
  const types = new Map(exported
    .filter((statement) => ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement))
    .map((statement) => [checker.getSymbolAtLocation(statement.name), statement.name.text]));
  const named = new Set();
  for (const statement of exported) {
    const self = ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement) ? statement.name.text : undefined;
    const visit = (node) => {
      if (ts.isTypeReferenceNode(node) || ts.isExpressionWithTypeArguments(node)) {
        const type = types.get(checker.getSymbolAtLocation(ts.isTypeReferenceNode(node) ? node.typeName : node.expression));
        if (type !== undefined && type !== self) named.add(type);
      }
      ts.forEachChild(node, visit);
    };
    visit(statement);
  }
  return named;
}

/** The layer of a src file: its folder, or the entry file's name. */
function layerOf(file) {
  const parts = rel(file).split("/");
  return parts.length === 2 ? parts[1] : parts[1];
}

function rankOf(layer) {
  return LAYERS.findIndex((layers) => layers.includes(layer));
}

/** "from → to: why" for every import that breaks the layering (see the top of this file), sorted. */
export function layerViolations() {
  const { program: built, checker, files } = program();
  const violations = [];
  const edges = new Map(); // folder → folders it imports
  const fileEdges = new Map(); // file → src files it imports
  for (const source of built.getSourceFiles()) {
    if (!files.has(source.fileName) || !rel(source.fileName).startsWith("src/")) continue;
    const from = layerOf(source.fileName);
    fileEdges.set(rel(source.fileName), new Set());
    if (rankOf(from) < 0) violations.push(`${rel(source.fileName)}: in no layer (LAYERS in scripts/hygiene.mjs)`);
    for (const [specifier] of moduleReferences(source)) {
      const text = specifier.text;
      if (!text.startsWith(".")) {
        if (!text.startsWith("node:")) violations.push(`${rel(source.fileName)} → ${text}: src/ imports only src/, build/ and node: built-ins`);
        continue;
      }
      const to = target(checker, specifier) ?? join(dirname(source.fileName), text);
      const path = rel(to);
      if (path.startsWith("build/")) continue;
      if (!path.startsWith("src/")) {
        violations.push(`${rel(source.fileName)} → ${path}: src/ imports only src/, build/ and node: built-ins`);
        continue;
      }
      fileEdges.get(rel(source.fileName)).add(path);
      const into = layerOf(to);
      if (into === from) continue;
      if (!edges.has(from)) edges.set(from, new Set());
      edges.get(from).add(into);
      if (rankOf(into) >= rankOf(from)) violations.push(`${rel(source.fileName)} → ${path}: ${from} may not import ${into} (not below it)`);
    }
  }
  // Cycles among folders (the ranks forbid them; this says so plainly if LAYERS is ever loosened),
  // and among files.
  violations.push(...cycles(edges).map((cycle) => `import cycle among src folders: ${cycle}`));
  violations.push(...cycles(fileEdges).map((cycle) => `import cycle among src files: ${cycle}`));
  return violations.sort();
}

/** Each cycle of the graph `edges` (node → nodes), once, as "a → b → a". */
function cycles(edges) {
  const found = [];
  const state = new Map();
  const visit = (node, path) => {
    if (state.get(node) === "done") return;
    if (state.get(node) === "open") {
      found.push([...path.slice(path.indexOf(node)), node].join(" → "));
      return;
    }
    state.set(node, "open");
    for (const next of edges.get(node) ?? []) visit(next, [...path, node]);
    state.set(node, "done");
  };
  for (const node of edges.keys()) visit(node, []);
  return found;
}

/** "file:line: member" for every member of src/ declared with TypeScript's `private`. */
export function tsPrivateMembers() {
  const { program: built, files } = program();
  const found = [];
  for (const source of built.getSourceFiles()) {
    if (!files.has(source.fileName) || !rel(source.fileName).startsWith("src/")) continue;
    const visit = (node) => {
      if (ts.canHaveModifiers(node) && ts.getModifiers(node)?.some((modifier) => modifier.kind === ts.SyntaxKind.PrivateKeyword)) {
        const { line } = source.getLineAndCharacterOfPosition(node.getStart(source));
        found.push(`${rel(source.fileName)}:${line + 1}: ${node.name?.getText(source) ?? "constructor"}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return found.sort();
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = [
    ...unusedExports().map((line) => `unused export: ${line}`),
    ...layerViolations(),
    ...tsPrivateMembers().map((line) => `TypeScript private: ${line}`),
  ];
  for (const line of problems) console.log(line);
  console.log(problems.length === 0 ? "hygiene: clean" : `hygiene: ${problems.length} problems`);
  process.exitCode = problems.length === 0 ? 0 : 1;
}
