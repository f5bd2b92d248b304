// The playground's entry point: tabs, the API key (kept in sessionStorage only), and each tab's module.

import { api, apiKey, clearError, reporting, setApiKey } from "./api.js";
import { initEmotion } from "./emotion.js";
import { initSpeak } from "./speak.js";
import { initTalk } from "./talk.js";
import { initTranscribe } from "./transcribe.js";

const $ = (id) => document.getElementById(id);

function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const s of document.querySelectorAll(".tab")) s.classList.toggle("active", s.id === `tab-${name}`);
  history.replaceState(null, "", `#${name}`);
}

async function main() {
  const tabs = [initTalk(), initTranscribe(), initSpeak(), initEmotion()];
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  // Tabs are addressable (#talk, #speak, ...): links and the back button land on the right one.
  const follow = () => {
    const wanted = location.hash.slice(1);
    if (document.getElementById(`tab-${wanted}`)) showTab(wanted);
  };
  window.addEventListener("hashchange", follow);
  follow();

  // Fill every tab's pickers from the server; on a 401 the message asks for the key, and entering it retries.
  const refresh = async () => {
    clearError();
    const ok = await reporting(() => api("/v1/models"));
    $("key-state").textContent = ok ? (apiKey() ? "key in use (this tab only)" : "no key needed") : "";
    if (ok) for (const tab of tabs) await tab.refresh();
  };
  $("api-key").value = apiKey();
  $("key-form").addEventListener("submit", (e) => {
    e.preventDefault();
    setApiKey($("api-key").value.trim());
    refresh();
  });
  await refresh();
  document.body.dataset.ready = "true";  // for the browser tests: pickers are filled (or the error is shown)
}

main();
