// Shows each UTC time in the reader's own time zone as a tooltip; the pages work without it.
document.querySelectorAll("time[datetime]").forEach(function (el) {
  var when = new Date(el.getAttribute("datetime"));
  if (!isNaN(when)) {
    el.title = when.toLocaleString() + " local" + (el.title ? " (" + el.title + ")" : "");
  }
});
