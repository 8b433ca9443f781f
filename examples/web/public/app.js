// The booking page: plain DOM, no framework. Everything it knows comes from this site's /api (the
// BFF); times are shown in the visitor's own time zone, prices in the currency's own digits.
const $ = (selector) => document.querySelector(selector);
let me = null;
let shownService = null;

async function api(method, path, body) {
  const response = await fetch(path, {
    method, credentials: "same-origin",
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json();
  if (!response.ok) {
    const error = new Error(answer.message ?? "Something went wrong.");
    Object.assign(error, answer, { status: response.status });
    throw error;
  }
  return answer;
}

function notify(message, { error = false } = {}) {
  const notice = $("#notice");
  notice.textContent = message;
  notice.classList.toggle("error", error);
}

function failed(error) {
  const fields = (error.fields ?? []).map((f) => `${f.field}: ${f.message}`).join(" ");
  let message = error.message + (fields ? ` ${fields}` : "");
  if (error.newPrice) message += ` The price is now ${money(error.newPrice)}.`;
  notify(message, { error: true });
}

function money(amount) {
  if (!amount) return "";
  const format = new Intl.NumberFormat(undefined, { style: "currency", currency: amount.currencyCode });
  const digits = format.resolvedOptions().maximumFractionDigits;
  return format.format(Number(amount.amountMinor) / 10 ** digits);
}

const day = new Intl.DateTimeFormat(undefined, { weekday: "long", day: "numeric", month: "long" });
const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const moment = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

function element(tag, { dataset = {}, ...properties } = {}, ...children) {
  const made = Object.assign(document.createElement(tag), properties);
  Object.assign(made.dataset, dataset);
  made.append(...children);
  return made;
}

// --- account ---------------------------------------------------------------------------------------

function showAccount() {
  $("#signed-in").hidden = !me;
  $("#auth").hidden = Boolean(me);
  $("#mine").hidden = !me;
  $("#me").textContent = me ? `${me.displayName} (${me.email})` : "";
  if (me) loadBookings();
}

async function signIn(path, form) {
  try {
    me = (await api("POST", path, Object.fromEntries(new FormData(form)))).user;
    form.reset();
    notify(`Welcome, ${me.displayName}.`);
    showAccount();
  } catch (error) {
    failed(error);
  }
}

// --- browsing --------------------------------------------------------------------------------------

async function search(form) {
  const query = new URLSearchParams(new FormData(form));
  try {
    const { services } = await api("GET", `/api/services?${query}`);
    $("#services").replaceChildren(...services.map((service) => element("li", {},
      element("strong", { textContent: service.displayName }),
      ` · ${service.minutes} min · from ${money(service.price)} · `,
      element("button", { type: "button", textContent: `See times for ${service.displayName}`,
                          onclick: () => showWeek(service) }))));
    if (!services.length) notify("No service matches that search.");
  } catch (error) {
    failed(error);
  }
}

async function showWeek(service) {
  shownService = service;
  try {
    const { slots } = await api("GET", `/api/slots?service=${encodeURIComponent(service.name)}`);
    const byDay = new Map();
    for (const slot of slots) {
      const key = day.format(new Date(slot.startTime));
      byDay.set(key, [...(byDay.get(key) ?? []), slot]);
    }
    $("#week-title").textContent = `Times this week: ${service.displayName}`;
    $("#week-zone").textContent =
      `Times are in your time zone (${Intl.DateTimeFormat().resolvedOptions().timeZone}).`;
    $("#days").replaceChildren(...[...byDay].map(([label, daySlots]) => element("section", {},
      element("h3", { textContent: label }),
      ...daySlots.map((slot) => {
        const seats = `${slot.remainingSeats} ${slot.remainingSeats === 1 ? "seat" : "seats"} left`;
        return element("button", {
          type: "button", disabled: slot.remainingSeats === 0, dataset: { start: slot.startTime },
          ariaLabel: `${label} ${time.format(new Date(slot.startTime))}, ${money(slot.price)}, ${seats}`,
          onclick: () => confirmBooking(service, slot),
        }, `${time.format(new Date(slot.startTime))} · ${money(slot.price)}`,
           element("span", { className: "seats", textContent: ` (${seats})` }));
      }))));
    if (!slots.length) $("#days").replaceChildren(element("p", { textContent: "No free times this week." }));
    $("#week").hidden = false;
  } catch (error) {
    failed(error);
  }
}

function confirmBooking(service, slot) {
  if (!me) {
    notify("Please sign in or sign up to book.", { error: true });
    $("#sign-in-form input").focus();
    return;
  }
  const dialog = $("#confirm");
  $("#confirm-text").textContent =
    `${service.displayName} on ${moment.format(new Date(slot.startTime))}, for ${money(slot.price)}.`;
  $("#confirm-book").textContent = `Book for ${money(slot.price)}`;
  dialog.onclose = async () => {
    if (dialog.returnValue !== "book") return;
    try {
      await api("POST", "/api/bookings", { service: service.name, startTime: slot.startTime,
                                           requestId: crypto.randomUUID(), expectedTotal: slot.price });
      notify(`Booked: ${service.displayName} on ${moment.format(new Date(slot.startTime))}.`);
      await Promise.all([showWeek(service), loadBookings()]);
    } catch (error) {
      failed(error);
      await showWeek(service);
    }
  };
  dialog.showModal();
}

// --- my bookings -----------------------------------------------------------------------------------

async function loadBookings() {
  try {
    const { bookings } = await api("GET", "/api/bookings");
    $("#bookings").replaceChildren(...bookings.map((booking) => {
      const when = moment.format(new Date(booking.startTime));
      const item = element("li", { dataset: { booking: booking.name } },
        `${booking.serviceName}, ${when}: ${booking.status}`,
        booking.status === "cancelled" && booking.cancellationFee && Number(booking.cancellationFee.amountMinor)
          ? ` (fee ${money(booking.cancellationFee)})` : "");
      if (booking.status === "confirmed" || booking.status === "pending") {
        item.append(" ", element("button", { type: "button", textContent: `Cancel ${booking.serviceName}, ${when}`,
                                             onclick: () => cancelBooking(booking, when) }));
      }
      return item;
    }));
    if (!bookings.length) $("#bookings").replaceChildren(element("li", { textContent: "No bookings yet." }));
  } catch (error) {
    failed(error);
  }
}

async function cancelBooking(booking, when) {
  try {
    const { fee } = await api("POST", "/api/bookings/cancellation", { name: booking.name });
    const costs = fee && Number(fee.amountMinor) ? `Cancelling now costs ${money(fee)}.` : "Cancelling now is free.";
    $("#cancel-text").textContent = `${booking.serviceName}, ${when}. ${costs}`;
  } catch (error) {
    failed(error);
    return;
  }
  const dialog = $("#cancel");
  dialog.onclose = async () => {
    if (dialog.returnValue !== "yes") return;
    try {
      await api("POST", "/api/bookings/cancel", { name: booking.name, reason: "cancelled on the booking page" });
      notify(`Cancelled: ${booking.serviceName}, ${when}.`);
      await loadBookings();
      if (shownService) await showWeek(shownService);
    } catch (error) {
      failed(error);
    }
  };
  dialog.showModal();
}

// --- start -----------------------------------------------------------------------------------------

$("#sign-in-form").addEventListener("submit", (event) => { event.preventDefault(); signIn("/api/signin", event.target); });
$("#sign-up-form").addEventListener("submit", (event) => { event.preventDefault(); signIn("/api/signup", event.target); });
$("#search-form").addEventListener("submit", (event) => { event.preventDefault(); search(event.target); });
$("#sign-out").addEventListener("click", async () => {
  await api("POST", "/api/signout", {});
  me = null;
  notify("Signed out.");
  showAccount();
});

const [{ user }, { categories }] = await Promise.all([api("GET", "/api/me"), api("GET", "/api/categories")]);
me = user;
$("#search-form select").append(...categories.map((c) => element("option", { value: c.name,
                                                                            textContent: c.displayName })));
showAccount();
await search($("#search-form"));
document.body.dataset.ready = "true";
