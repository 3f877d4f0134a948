// The editor preview page: sends the form as a RelatedRequest (proto3 JSON, explain: true) to
// POST /v1/related and shows the block and what was left out. Text is always inserted as text
// (textContent), never as HTML.
"use strict";

const REASONS = {
  BELOW_SCORE_FLOOR: "below the score floor: too weakly related to show",
  NEAR_COPY_OF_SOURCE: "a near-copy of the source's text (the same words, perhaps another site's name)",
  NEAR_COPY_OF_BETTER_STORY: "a near-copy of a better story's text in the block",
  RANKED_BELOW_THE_BLOCK: "related, but the block is full of better stories",
  FILTERED_BY_SECTION: "filtered out: not in the chosen sections",
  FILTERED_BY_LANGUAGE: "filtered out: another language",
  FILTERED_BY_DATE: "filtered out: outside the date window (or undated)",
  EXCLUDED_BY_ID: "excluded by id",
};

const byId = (id) => document.getElementById(id);

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function formatDate(rfc3339) {
  if (!rfc3339) return "undated";
  const date = new Date(rfc3339);
  return Number.isNaN(date.getTime()) ? rfc3339 : date.toISOString().slice(0, 10);
}

function termList(terms) {
  const list = element("ul", undefined, "terms");
  list.setAttribute("aria-label", "shared terms");
  for (const term of terms || []) list.appendChild(element("li", term));
  return list;
}

function storyTitle(story) {
  const title = element("span", undefined, "story-title");
  if (story.url) {
    const link = element("a", story.title || story.id);
    link.href = story.url;
    title.appendChild(link);
  } else {
    title.textContent = story.title || story.id;
  }
  return title;
}

function request() {
  const stored = byId("source-stored").checked;
  const sections = byId("sections").value.split(",").map((s) => s.trim()).filter(Boolean);
  const filter = { sections };
  if (byId("after").value) filter.publishedAfter = byId("after").value + "T00:00:00Z";
  if (byId("before").value) filter.publishedBefore = byId("before").value + "T00:00:00Z";
  const body = { k: Number(byId("k").value) || 0, filter, explain: true };
  if (stored) {
    body.articleId = byId("article-id").value.trim();
  } else {
    body.draft = { title: byId("title").value, body: byId("body").value, lang: byId("lang").value };
  }
  return body;
}

function showError(message) {
  const error = byId("error");
  error.textContent = message;
  error.hidden = false;
  byId("answer").hidden = true;
  byId("status").textContent = "The preview failed.";
}

function showAnswer(answer) {
  byId("error").hidden = true;
  const stories = answer.stories || [];
  const leftOut = answer.leftOut || [];
  const titles = new Map(stories.map((story) => [story.id, story.title || story.id]));

  const list = byId("stories");
  list.replaceChildren();
  for (const story of stories) {
    const item = element("li");
    item.appendChild(storyTitle(story));
    item.appendChild(element("div",
      `${story.section || "no section"} · ${formatDate(story.publishedAt)} · score ${story.score.toFixed(3)}`, "meta"));
    item.appendChild(element("div", "Shared terms:", "terms-label"));
    item.appendChild(termList(story.sharedTerms));
    list.appendChild(item);
  }
  byId("block-empty").hidden = stories.length > 0;

  const table = byId("left-out");
  const rows = table.tBodies[0];
  rows.replaceChildren();
  for (const left of leftOut) {
    const story = left.story || {};
    const row = element("tr");
    const cell = element("td");
    cell.appendChild(storyTitle(story));
    cell.appendChild(termList(story.sharedTerms));
    row.appendChild(cell);
    row.appendChild(element("td", story.section || "–"));
    row.appendChild(element("td", formatDate(story.publishedAt), "nowrap"));
    row.appendChild(element("td", (story.score || 0).toFixed(3), "number"));
    let reason = REASONS[left.reason] || left.reason;
    if (left.reason === "NEAR_COPY_OF_BETTER_STORY" && left.nearCopyOf) {
      reason += `: “${titles.get(left.nearCopyOf) || left.nearCopyOf}”`;
    }
    row.appendChild(element("td", reason, "reason"));
    rows.appendChild(row);
  }
  table.hidden = leftOut.length === 0;
  byId("left-out-empty").hidden = leftOut.length > 0;
  byId("answer").hidden = false;
  byId("status").textContent =
    `${stories.length} ${stories.length === 1 ? "story" : "stories"} in the block, ${leftOut.length} left out.`;
}

async function preview(event) {
  event.preventDefault();
  const button = byId("submit");
  button.disabled = true;
  byId("status").textContent = "Asking the server…";
  const headers = { "Content-Type": "application/json" };
  const token = byId("token").value.trim();
  if (token) headers.Authorization = `Bearer ${token}`;
  const ask = () => fetch("/v1/related", { method: "POST", headers, body: JSON.stringify(request()) });
  try {
    // A preview only reads, so a request that never reached the server (say, on a kept-alive
    // connection that had just been closed) is safe to send once more.
    const response = await ask().catch(ask);
    const answer = await response.json();
    if (response.ok) {
      showAnswer(answer);
    } else {
      showError((answer.error && answer.error.message) || `HTTP ${response.status}`);
    }
  } catch (failure) {
    showError(`The server could not be reached: ${failure.message}`);
  } finally {
    button.disabled = false;
  }
}

function showSourceFields() {
  const stored = byId("source-stored").checked;
  byId("draft-fields").hidden = stored;
  byId("stored-fields").hidden = !stored;
}

document.addEventListener("DOMContentLoaded", () => {
  const form = byId("preview");
  form.addEventListener("submit", preview);
  for (const radio of document.querySelectorAll("input[name=source]")) {
    radio.addEventListener("change", showSourceFields);
  }
  byId("body").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) form.requestSubmit();
  });
  showSourceFields();
});
