// The display name this browser posts as: checked as the server checks an author,
// and remembered in localStorage for the next visit.

const NAME_KEY = 'chat.name';
const CONTROL_RE = /[\u0000-\u001f\u007f-\u009f]/;

/** Why the server would refuse `name` as an author, or '' if it would not. */
export function nameProblem(name) {
  if (!name) return 'Pick a display name.';
  if ([...name].length > 64) return 'At most 64 characters.'; // the server counts code points
  if (CONTROL_RE.test(name)) return 'No control characters.';
  return '';
}

function load() {
  try {
    const saved = localStorage.getItem(NAME_KEY)?.trim() ?? '';
    return nameProblem(saved) ? null : saved;
  } catch {
    return null; // storage disabled
  }
}

/** The name to post as, or null until one has been chosen. */
export let myName = load();

export function setMyName(name) {
  myName = name;
  try { localStorage.setItem(NAME_KEY, name); } catch { /* storage disabled: just do not remember */ }
}
