// Validates Kubernetes objects with the validators npm @kubernetes-models/istio compiles from
// Istio's CRD OpenAPI schemas (one module per group, version and kind under `_schemas/`).
//
// Usage: node validate_with_package.mjs <package directory> < objects.json
// Input: a JSON array of objects. Output: a JSON array with, per object, `null` when the
// package has no schema for its apiVersion and kind, else its violations as
// `{pointer, message}` (`pointer`: a JSON pointer to the offending field).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.argv[2];
const objects = JSON.parse(readFileSync(0, "utf8"));

// "networking.istio.io" + "v1alpha3" -> "NetworkingIstioIo" + "V1alpha3", the modules' names.
const pascal = (s) =>
  s
    .split(/[.-]/)
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join("");

const at = (value, pointer) =>
  pointer
    .split("/")
    .slice(1)
    .map((segment) => segment.replaceAll("~1", "/").replaceAll("~0", "~"))
    .reduce((v, key) => (v === undefined || v === null ? undefined : v[key]), value);

function describe(object, error) {
  const value = JSON.stringify(at(object, error.instancePath));
  const p = error.params ?? {};
  switch (error.keyword) {
    case "required":
      return {
        pointer: `${error.instancePath}/${p.missingProperty}`,
        message: "required field is missing",
      };
    case "type":
      return { pointer: error.instancePath, message: `expected ${p.type}, found ${value}` };
    case "enum":
      return {
        pointer: error.instancePath,
        message: `${value} is not one of ${JSON.stringify(p.allowedValues)}`,
      };
    case "pattern":
      return { pointer: error.instancePath, message: `${value} does not match ${p.pattern}` };
    case "format":
      return { pointer: error.instancePath, message: `${value} is not a valid ${p.format}` };
    case "oneOf":
      return { pointer: error.instancePath, message: "must match exactly one oneOf schema" };
    case "not":
      return { pointer: error.instancePath, message: "matches a schema it must not (not)" };
    default:
      return {
        pointer: error.instancePath,
        message: `${error.keyword} ${JSON.stringify(p)} violated by ${value}`,
      };
  }
}

const results = [];
for (const object of objects) {
  const [group = "", version = ""] = String(object.apiVersion ?? "").split("/");
  const module = join(dir, "_schemas", `${pascal(group)}${pascal(version)}${object.kind}.js`);
  if (!existsSync(module)) {
    results.push(null);
    continue;
  }
  const { validate } = await import(pathToFileURL(module).href);
  results.push(validate(object) ? [] : validate.errors.map((e) => describe(object, e)));
}
process.stdout.write(JSON.stringify(results));
