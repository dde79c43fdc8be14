/* kiln review: the page (placeholder until the review-web helper writes it) */
"use strict";
fetch("/api/session", {credentials: "same-origin"})
	.then((r) => r.json())
	.then((s) => { document.getElementById("status").textContent = s.project + ": " + s.total + " tokens"; });
