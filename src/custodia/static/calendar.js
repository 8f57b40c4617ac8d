/* The calendar page (templates/scheduling/calendar.html): FullCalendar's month, week and day
 * views of the visits, fed by GET /api/v1/visits/calendar. Managers move and resize a visit by
 * dragging it (PATCH /api/v1/visits/<id> with the session's CSRF token: the same action as the
 * edit form; a refusal is shown and the visit goes back) and add one by clicking a time (the new
 * visit form, with that start). Everything comes from the element's data-* attributes: no
 * inline script or style (the CSP forbids them). Without JavaScript the week grid stays. */
(function () {
  "use strict";

  var host = document.getElementById("calendar");
  if (!host || !window.FullCalendar) {
    return;
  }
  var data = host.dataset;
  var editable = data.editable === "true";
  var statusLine = document.getElementById("calendar-status");
  var filterForm = document.querySelector(".calendar-filter");
  var staffSelect = filterForm ? filterForm.querySelector("select[name=staff]") : null;

  function say(text) {
    if (statusLine) {
      statusLine.textContent = text;
    }
  }

  function messageOf(body) {
    if (!body) {
      return "the server refused it.";
    }
    var errors = body.errors || {};
    var parts = [];
    Object.keys(errors).forEach(function (field) {
      parts = parts.concat(errors[field]);
    });
    return parts.length ? parts.join(" ") : body.detail || "the server refused it.";
  }

  function feed(info, success, failure) {
    var query = new URLSearchParams({ start: info.start.toISOString(), end: info.end.toISOString() });
    if (staffSelect && staffSelect.value) {
      query.set("staff", staffSelect.value);
    }
    fetch(data.feed + "?" + query.toString(), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("The visits could not be loaded (" + response.status + ").");
        }
        return response.json();
      })
      .then(function (events) {
        success(
          events.map(function (event) {
            var title = event.title + (event.staff ? " · " + event.staff : "");
            return {
              id: event.id,
              title: title,
              start: event.start,
              end: event.end,
              url: event.url,
              color: event.color,
              contrastColor: "#ffffff",
              className: "visit-event status-" + event.status,
              extendedProps: { staffId: event.staff_id, status: event.status },
            };
          })
        );
      })
      .catch(function (error) {
        say(error.message);
        failure(error);
      });
  }

  function save(info, verb) {
    var event = info.event;
    var body = { starts_at: event.start.toISOString() };
    if (event.end) {
      body.ends_at = event.end.toISOString();
    }
    say("Saving…");
    fetch(data.visitApi + "/" + encodeURIComponent(event.id), {
      method: "PATCH",
      credentials: "same-origin",
      headers: {
        Accept: "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": data.csrf,
      },
      body: JSON.stringify(body),
    })
      .then(function (response) {
        if (response.ok) {
          say("Visit " + verb + ": " + event.title + ".");
          return null;
        }
        return response
          .json()
          .catch(function () {
            return null;
          })
          .then(function (refusal) {
            info.revert();
            say("The visit was not " + verb + ": " + messageOf(refusal));
          });
      })
      .catch(function () {
        info.revert();
        say("The visit was not " + verb + ": the server could not be reached.");
      });
  }

  function newVisit(info) {
    // "2026-12-05T10:30:00+01:00" in a time view, "2026-12-05" in the month view.
    var start = info.dateStr.length > 10 ? info.dateStr.slice(0, 16) : info.dateStr + "T09:00";
    window.location.assign(data.newVisit + "?starts_at=" + encodeURIComponent(start));
  }

  var narrow = window.matchMedia("(max-width: 40rem)").matches;
  var calendar = new window.FullCalendar.Calendar(host, {
    timeZone: data.timeZone || "local",
    initialDate: data.initialDate,
    initialView: narrow ? "timeGridDay" : "timeGridWeek",
    firstDay: 1,
    height: "auto",
    nowIndicator: true,
    // A day's name as a link is labelled with the full date, which its text ("Mon 30") is not
    // part of (axe: label-content-name-mismatch); the Day button does the same.
    navLinks: false,
    // The button's text is "Today" in every view; its label says the same (WCAG 2.5.3).
    todayHint: "Today",
    dayMaxEvents: true,
    eventDisplay: "block",
    scrollTime: "07:00:00",
    eventTimeFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    slotHeaderFormat: { hour: "2-digit", minute: "2-digit", hour12: false },
    headerToolbar: narrow
      ? { start: "prev,next", center: "title", end: "today" }
      : { start: "prev,next today", center: "title", end: "dayGridMonth,timeGridWeek,timeGridDay" },
    footerToolbar: narrow ? { center: "dayGridMonth,timeGridWeek,timeGridDay" } : false,
    editable: editable,
    eventStartEditable: editable,
    eventDurationEditable: editable,
    events: feed,
    eventDrop: function (info) {
      save(info, "moved");
    },
    eventResize: function (info) {
      save(info, "resized");
    },
    dateClick: editable ? newVisit : undefined,
  });

  if (filterForm) {
    // Filtering needs no reload: the feed is asked again for the chosen staff member.
    filterForm.addEventListener("submit", function (submitted) {
      submitted.preventDefault();
      calendar.refetchEvents();
    });
    if (staffSelect) {
      staffSelect.addEventListener("change", function () {
        calendar.refetchEvents();
      });
    }
  }

  host.hidden = false;
  var weekGrid = document.getElementById("week-grid");
  if (weekGrid) {
    weekGrid.hidden = true;
  }
  calendar.render();
})();
