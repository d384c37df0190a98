// Lifecycle of an experiment as the console offers it (the API has the last word:
// an action the page still offers after another user changed the status answers 409).

export const ACTIONS = ["start", "pause", "resume", "complete", "cancel"];

const ALLOWED_FROM = {
  start: ["draft"],
  pause: ["running"],
  resume: ["paused"],
  complete: ["running", "paused"],
  cancel: ["draft", "running", "paused"],
};

const PAST = {
  start: "started",
  pause: "paused",
  resume: "resumed",
  complete: "completed",
  cancel: "cancelled",
};

export const STATUS_FILTERS = ["all", "running", "draft", "paused", "completed", "cancelled"];

/** The actions offered for an experiment in ``status``, in display order. */
export function allowedActions(status) {
  return ACTIONS.filter((a) => ALLOWED_FROM[a].includes(status));
}

export function actionLabel(action) {
  return action.charAt(0).toUpperCase() + action.slice(1);
}

export function actionDone(action) {
  return PAST[action] ?? action;
}

const STATUS_ORDER = ["running", "paused", "draft", "completed", "cancelled"];

/** Active experiments first (running, paused, draft, then ended ones); stable otherwise. */
export function byStatus(rows) {
  const rank = (s) => {
    const i = STATUS_ORDER.indexOf(s);
    return i < 0 ? STATUS_ORDER.length : i;
  };
  return rows
    .map((row, i) => ({ row, i }))
    .sort((a, b) => rank(a.row.status) - rank(b.row.status) || a.i - b.i)
    .map((x) => x.row);
}
