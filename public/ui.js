// The page's elements, and the one way anything is built from user data.

const $ = (id) => document.getElementById(id);

export const ui = {
  title: $('room-title'), me: $('me'), myName: $('my-name'), status: $('status'), change: $('change'),
  joinForm: $('join-form'), joinHint: $('join-hint'), cancelJoin: $('join-cancel'),
  name: $('name'), nameError: $('name-error'), room: $('room'), roomError: $('room-error'),
  scroller: $('scroller'), older: $('older'), messages: $('messages'),
  sendForm: $('send-form'), text: $('text'), send: $('send'), sendStatus: $('send-status'), cancel: $('cancel'),
};

// The page shows user text inside an isolate (<bdi>, unicode-bidi: isolate), which the
// text's own isolate controls can undo: a pop-directional-isolate (U+2069) with no
// isolate of the text's own open before it ends the page's isolate early, and an
// isolate left open at the end takes the page's closing for its own. Either way what
// follows (an override, say) reorders the page's own text beside it. Dropping the
// strays and closing what is left open keeps every control inside its box.
export function balancedIsolates(text) {
  let open = 0;
  const kept = text.replace(/[\u2066-\u2069]/g, (c) => {
    if (c !== '\u2069') open++;
    else if (open === 0) return '';
    else open--;
    return c;
  });
  return kept + '\u2069'.repeat(open);
}

// User data goes in only through textContent: never markup.
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = balancedIsolates(text);
  return node;
}
