// The "pull a model" picker's entries, from `oci-lsp model list --json`, or the fixed list of
// catalog ids when that command is not there (an older server) or fails.

export interface CatalogModel {
  id: string;
  /** e.g. "6.7B"; absent for models converted by hand. */
  params?: string;
  repo?: string;
  installed: boolean;
  /** GiB of memory the weights need, by precision. */
  memoryGiB?: { int8?: number; float16?: number };
  /** `false` for a model in the models directory that is not a catalog id. */
  inCatalog?: boolean;
}

/** The catalog ids of CONTRACT.md/README "Models", the fallback when listing fails. */
export const FALLBACK_MODELS: readonly CatalogModel[] = [
  { id: "ds-1.3b", params: "1.3B", repo: "m-a-p/OpenCodeInterpreter-DS-1.3B", installed: false },
  { id: "ds-6.7b", params: "6.7B", repo: "m-a-p/OpenCodeInterpreter-DS-6.7B", installed: false },
  { id: "ds-33b", params: "33B", repo: "m-a-p/OpenCodeInterpreter-DS-33B", installed: false },
  { id: "cl-7b", params: "7B", repo: "m-a-p/OpenCodeInterpreter-CL-7B", installed: false },
  { id: "cl-13b", params: "13B", repo: "m-a-p/OpenCodeInterpreter-CL-13B", installed: false },
  { id: "cl-34b", params: "34B", repo: "m-a-p/OpenCodeInterpreter-CL-34B", installed: false },
  { id: "cl-70b", params: "70B", repo: "m-a-p/OpenCodeInterpreter-CL-70B", installed: false },
  { id: "sc2-3b", params: "3B", repo: "m-a-p/OpenCodeInterpreter-SC2-3B", installed: false },
];

function finiteNumber(value: unknown): number | undefined {
  return typeof value === "number" && Number.isFinite(value) ? value : undefined;
}

/**
 * The models in `model list --json` output: a JSON array of objects with at least `id`.
 * Throws on anything else, so the caller falls back to the fixed list.
 */
export function parseModelList(stdout: string): CatalogModel[] {
  const value: unknown = JSON.parse(stdout);
  if (!Array.isArray(value)) {
    throw new Error("model list --json did not print a JSON array");
  }
  const models: CatalogModel[] = [];
  for (const item of value) {
    if (typeof item !== "object" || item === null) {
      continue;
    }
    const raw = item as Record<string, unknown>;
    if (typeof raw.id !== "string" || raw.id === "") {
      continue;
    }
    const model: CatalogModel = { id: raw.id, installed: raw.installed === true };
    if (typeof raw.params === "string") {
      model.params = raw.params;
    }
    if (typeof raw.repo === "string") {
      model.repo = raw.repo;
    }
    if (raw.inCatalog === false) {
      model.inCatalog = false;
    }
    if (typeof raw.memoryGiB === "object" && raw.memoryGiB !== null) {
      const memory = raw.memoryGiB as Record<string, unknown>;
      model.memoryGiB = { int8: finiteNumber(memory.int8), float16: finiteNumber(memory.float16) };
    }
    models.push(model);
  }
  if (models.length === 0) {
    throw new Error("model list --json listed no models");
  }
  return models;
}

export interface ModelPickItem {
  id: string;
  label: string;
  description: string;
  detail: string | undefined;
}

/**
 * Picker entries for the models that can be pulled: catalog models only (a hand-converted
 * model has no repo to pull from), installed ones marked, the configured one noted.
 */
export function modelPickItems(models: readonly CatalogModel[], configuredModel: string | undefined): ModelPickItem[] {
  return models
    .filter((m) => m.inCatalog !== false)
    .map((m) => {
      const facts: string[] = [];
      if (m.params) {
        facts.push(`${m.params} parameters`);
      }
      const int8 = m.memoryGiB?.int8;
      if (int8 !== undefined) {
        facts.push(`${int8} GiB in int8`);
      }
      if (m.installed) {
        facts.push("installed");
      }
      if (configuredModel === m.id) {
        facts.push("the configured model");
      }
      return {
        id: m.id,
        label: m.installed ? `$(check) ${m.id}` : m.id,
        description: facts.join(" · "),
        detail: m.repo,
      };
    });
}
