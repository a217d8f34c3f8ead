// The page's elements, and the one way anything is built from user data.

const $ = (id) => document.getElementById(id);

export const ui = {
  title: $('room-title'), me: $('me'), myName: $('my-name'), status: $('status'), change: $('change'),
  joinForm: $('join-form'), joinHint: $('join-hint'), cancelJoin: $('join-cancel'),
  name: $('name'), nameError: $('name-error'), room: $('room'), roomError: $('room-error'),
  scroller: $('scroller'), older: $('older'), messages: $('messages'),
  sendForm: $('send-form'), text: $('text'), send: $('send'), sendStatus: $('send-status'), cancel: $('cancel'),
};

// The page shows user text inside an isolate (<bdi>, unicode-bidi: isolate), which
// ends at the first pop-directional-isolate (U+2069) with no isolate of the text's
// own open before it: what follows such a stray, an override say, would reorder the
// page's own text beside it. Dropping the strays keeps every control inside its box.
export function withoutStrayIsolateEnds(text) {
  let open = 0;
  return text.replace(/[\u2066-\u2069]/g, (c) => {
    if (c !== '\u2069') open++;
    else if (open === 0) return '';
    else open--;
    return c;
  });
}

// User data goes in only through textContent: never markup.
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = withoutStrayIsolateEnds(text);
  return node;
}
