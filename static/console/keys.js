// Keyboard shortcuts for working a queue, outside text fields (and never with Ctrl, Alt
// or Meta, which belong to the browser):
//   j / k   open the next / previous row of the list
//   r / n   write a reply / an internal note in the open conversation
//   /       search (console.js)
//   ?       list the shortcuts
// Escape in the reply or note box leaves it (its draft stays), so that the keys work again.

export const SHORTCUTS = [
  ['j', 'Open the next row of the list'],
  ['k', 'Open the previous row of the list'],
  ['r', 'Write a reply in the open conversation'],
  ['n', 'Write an internal note in the open conversation'],
  ['/', 'Search'],
  ['Esc', 'Leave the reply or note box (the draft stays)'],
  ['?', 'These shortcuts'],
];

function inField(t) {
  return !!t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName));
}

/**
 * active() → whether the console is signed in and showing; rows() → the list's row
 * links in order; openRow(a); reply() / note(): focus the composer's box, false when
 * there is none; help(): show the shortcuts.
 */
export function setupShortcuts({ active, rows, openRow, reply, note, help }) {
  document.addEventListener('keydown', (e) => {
    if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.target;
    if (e.key === 'Escape' && t && t.tagName === 'TEXTAREA' && t.classList.contains('composer-input')) {
      // the picker (mentions, saved replies) closes first, on its own Escape
      const menu = document.getElementById('mention-menu');
      if (menu && !menu.hidden) return;
      t.blur();
      return;
    }
    if (inField(t) || !active() || document.querySelector('dialog[open]')) return;
    switch (e.key) {
      case 'j':
      case 'k': {
        const list = rows();
        if (!list.length) return;
        const at = list.findIndex((a) => a.classList.contains('active'));
        const next = at < 0 ? (e.key === 'j' ? 0 : list.length - 1)
          : Math.max(0, Math.min(list.length - 1, at + (e.key === 'j' ? 1 : -1)));
        e.preventDefault();
        if (next !== at) openRow(list[next]);
        return;
      }
      case 'r':
        if (reply()) e.preventDefault();
        return;
      case 'n':
        if (note()) e.preventDefault();
        return;
      case '?':
        e.preventDefault();
        help();
        return;
      default:
    }
  });
}
