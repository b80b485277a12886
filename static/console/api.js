// The hub's HTTP API (PROTOCOL §3): JSON in, JSON out, errors as ApiError.

export class ApiError extends Error {
  /** status 0 = the hub could not be reached. */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * A request function bound to a token getter: request(method, path, body?, opts?), where
 * opts.headers adds request headers (e.g. If-Match).
 */
export function makeApi(getToken) {
  return async function request(method, path, body, opts = {}) {
    const headers = { Accept: 'application/json', ...(opts.headers || {}) };
    const token = getToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'The hub could not be reached.');
    }
    let data = null;
    const text = await res.text().catch(() => '');
    if (text) {
      try { data = JSON.parse(text); } catch { data = null; }
    }
    if (!res.ok) {
      const err = data && data.error;
      throw new ApiError(res.status, (err && err.code) || `http_${res.status}`, (err && err.message) || res.statusText || 'Request failed');
    }
    return data;
  };
}

const POLITE = {
  network: 'We could not reach the hub. Please check your connection and try again.',
  unauthorized: 'Your session is no longer valid. Please sign in again.',
  forbidden: 'You are not allowed to do this',
  not_found: 'This item no longer exists.',
  invalid_transition: 'This is no longer possible: the message has changed status in the meantime.',
  session_ended: 'The customer’s session has ended, so replies are off. You can still add internal comments.',
  conflict: 'This was already done.',
  too_large: 'This text is too long (4,096 characters at most).',
  rate_limited: 'Too many actions at once. Please wait a moment and try again.',
  invalid: 'Please check what you entered',
  precondition_failed: 'Someone else changed this in the meantime. It is shown as it now is: look, then try again.',
};

/** A sentence for people, built from an ApiError (or any error). */
export function politeMessage(err) {
  if (!(err instanceof ApiError)) return 'Something went wrong. Please try again.';
  const base = POLITE[err.code];
  if (!base) return `Something went wrong (${err.message}). Please try again.`;
  if (err.code === 'forbidden' || err.code === 'invalid') {
    return err.message ? `${base}: ${err.message}.`.replace(/\.\.$/, '.') : `${base}.`;
  }
  return base;
}
