// Drives /playground in headless Chromium (Debian's, through playwright-core) and prints what a
// person would have seen as one JSON object. tests/gateway/playground.rs runs it and judges it.
//
//   node playground.mjs '{"url":…,"token":…,"question":…,"agents":[…]|null,"catalog":…|null,
//                         "action":"run"|"stop"|"followup"|"approve"|"answer","followup":…,
//                         "answer":…,"screenshot":…}'
import { chromium } from "playwright-core";

const job = JSON.parse(process.argv[2]);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  // Chromium's sandbox needs user namespaces, which containers running as root often lack.
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const dialogs = [];
  const pageErrors = [];
  const consoleErrors = [];
  const requests = [];
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("request", (r) => requests.push(r.url()));

  const response = await page.goto(`${job.url}/playground`);
  // The page asks /health what the gateway offers (sessions, catalogs) before it is ready.
  await page.waitForSelector("body[data-ready]", { timeout: 10000 });
  const prefilled = JSON.parse(await page.inputValue("#agents"));
  const catalogs = await page.evaluate(() =>
    document.getElementById("catalog-label").offsetParent === null ? [] :
      [...document.querySelectorAll("#catalog option")].map((o) => o.value).filter((v) => v));
  if (job.catalog) await page.selectOption("#catalog", job.catalog);
  await page.fill("#token", job.token ?? "");
  await page.fill("#question", job.question);
  if (job.agents) await page.fill("#agents", JSON.stringify(job.agents, null, 2));
  await page.click("#run");
  const status = () => document.getElementById("status").textContent;
  if (job.action === "stop") {
    await page.waitForSelector('.card[data-state="working"]', { timeout: 20000 });
    // The card shows when the call starts; give its send time to reach the peer, so there is a
    // remote task for the cancel to reach.
    await page.waitForTimeout(500);
    await page.click("#stop");
    await page.waitForFunction((s) => document.getElementById("status").textContent.startsWith("stopped"), null, { timeout: 20000 });
  } else {
    if (job.action === "approve") {
      // The call waits for a person: the card offers Approve / Decline; click Approve.
      await page.waitForSelector(".card .ask button.approve", { timeout: 20000 });
      if (job.waitingScreenshot) await page.screenshot({ path: job.waitingScreenshot, fullPage: true });
      await page.click(".card .ask button.approve");
    } else if (job.action === "answer") {
      // The agent asked a question: type the answer in the card and send it.
      await page.waitForSelector(".card .ask input", { timeout: 20000 });
      await page.fill(".card .ask input", job.answer);
      await page.click(".card .ask button.send");
    }
    const settled = () => page.waitForFunction(
      () => /^(done|rejected|failed|the stream)/.test(document.getElementById("status").textContent),
      null,
      { timeout: 30000 },
    );
    await settled();
    if (job.action === "followup") {
      // The finished turn moved up; the question box takes the follow-up.
      await page.fill("#question", job.followup);
      await page.click("#run");
      // Settled again: the first turn moved up, the second is done (or was refused).
      await page.waitForFunction(
        () => (document.querySelectorAll("#conversation .turn").length === 1
          && /^done/.test(document.getElementById("status").textContent))
          || /^(rejected|failed|the stream)/.test(document.getElementById("status").textContent),
        null,
        { timeout: 30000 },
      );
    }
  }
  // Time for anything injected to fire.
  await page.waitForTimeout(300);
  const seen = await page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent;
    return {
      status: text("status"),
      answer: text("answer"),
      usage: text("usage"),
      error: text("error"),
      formError: text("form-error"),
      cards: [...document.querySelectorAll(".card")].map((c) => ({
        state: c.dataset.state,
        agent: c.querySelector(".agent").textContent,
        skill: c.querySelector(".skill").textContent,
        took: c.querySelector(".took").textContent,
        output: c.querySelector(".output").textContent,
      })),
      // Images other than the plan's files (which the page fetches itself and shows as blobs).
      images: document.querySelectorAll("img:not(.file img)").length,
      files: [...document.querySelectorAll(".file")].map((f) => {
        const img = f.querySelector("img");
        const link = f.querySelector("a");
        return { name: f.dataset.name, image: img ? { loaded: img.complete && img.naturalWidth > 0,
          width: img.naturalWidth, src: img.src.split(":")[0] } : null,
          link: link ? link.getAttribute("href") : null, text: f.textContent };
      }),
      // The answer's Markdown may only make these elements, with nothing but a class.
      elementsInResults: [...document.querySelectorAll("#answer *, .card .output *, #error *, #conversation .a *")]
        .filter((e) => !(e.closest("#answer, #conversation .a") && ["P", "UL", "OL", "LI", "H3", "PRE", "STRONG", "EM", "CODE", "SPAN"].includes(e.tagName)
          && [...e.attributes].every((a) => a.name === "class"))).length,
      answerTags: [...document.querySelectorAll("#answer *")].map((e) => e.tagName.toLowerCase()),
      strong: [...document.querySelectorAll("#answer strong, #conversation strong")].map((e) => e.textContent),
      citations: [...document.querySelectorAll("#answer .cite, #conversation .cite")].map((e) => e.textContent),
      listItems: [...document.querySelectorAll("#answer li, #conversation li")].map((e) => e.textContent),
      badges: [...document.querySelectorAll(".card .badge")].filter((b) => !b.hidden).map((b) => b.textContent),
      session: text("session"),
      conversation: [...document.querySelectorAll("#conversation .turn")].map((t) => ({
        question: t.querySelector(".q").textContent, answer: t.querySelector(".a").textContent })),
    };
  });
  if (job.screenshot) await page.screenshot({ path: job.screenshot, fullPage: true });
  console.log(JSON.stringify({
    ...seen,
    http: response.status(),
    csp: response.headers()["content-security-policy"] ?? null,
    prefilled,
    catalogs,
    dialogs,
    pageErrors,
    consoleErrors,
    // The page's own blobs (files it fetched) are of the gateway's origin too.
    foreignRequests: requests.filter((u) => !u.startsWith(job.url) && !u.startsWith(`blob:${job.url}`)),
  }));
} finally {
  await browser.close();
}
