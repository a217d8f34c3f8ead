// The page's elements, and the one way anything is built from user data.

const $ = (id) => document.getElementById(id);

export const ui = {
  title: $('room-title'), me: $('me'), myName: $('my-name'), status: $('status'), change: $('change'),
  joinForm: $('join-form'), joinHint: $('join-hint'), cancelJoin: $('join-cancel'),
  name: $('name'), nameError: $('name-error'), room: $('room'), roomError: $('room-error'),
  scroller: $('scroller'), older: $('older'), messages: $('messages'),
  sendForm: $('send-form'), text: $('text'), send: $('send'), sendStatus: $('send-status'), cancel: $('cancel'),
};

// User data goes in only through textContent: never markup.
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
