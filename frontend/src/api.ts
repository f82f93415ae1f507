// JSON API client: session cookie auth, CSRF token from the csrftoken cookie sent as X-CSRFToken.

export class ApiError extends Error {
  constructor(
    public status: number,
    public body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
  /** Network failures and server errors may succeed when tried again; 4xx answers will not. */
  get retryable(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

export function csrfToken(): string {
  const match = document.cookie.split("; ").find((part) => part.startsWith("csrftoken="));
  return match ? decodeURIComponent(match.slice("csrftoken=".length)) : "";
}

export async function api<T = unknown>(method: string, url: string, body?: unknown): Promise<T> {
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...(method !== "GET" ? { "X-CSRFToken": csrfToken() } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  } catch {
    throw new ApiError(0, null);
  }
  if (response.status === 204) return null as T;
  const text = await response.text();
  let data: unknown = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { detail: text.slice(0, 200) };
    }
  }
  if (!response.ok) throw new ApiError(response.status, data);
  return data as T;
}

/** All pages of a paginated list endpoint (DRF PageNumberPagination), up to a sane cap. */
export async function apiList<T>(url: string, maxPages = 20): Promise<T[]> {
  const out: T[] = [];
  let next: string | null = url;
  for (let page = 0; next && page < maxPages; page++) {
    const data: { results?: T[]; next?: string | null } | T[] = await api("GET", next);
    if (Array.isArray(data)) return data;
    out.push(...(data.results ?? []));
    next = data.next ?? null;
  }
  return out;
}

/** Human text for an error body: DRF's {"detail": ...} or the first field message. */
export function errorText(error: unknown): string {
  if (error instanceof ApiError) {
    const body = error.body as Record<string, unknown> | null;
    if (body && typeof body === "object") {
      if (typeof body.detail === "string") return body.detail;
      for (const [field, value] of Object.entries(body)) {
        const message = flatten(value)[0];
        if (message) return `${field}: ${message}`;
      }
    }
    return `HTTP ${error.status}`;
  }
  return String(error);
}

export function flatten(value: unknown): string[] {
  if (typeof value === "string") return [value];
  if (Array.isArray(value)) return value.flatMap(flatten);
  if (value && typeof value === "object") return Object.values(value).flatMap(flatten);
  return [];
}
