"""The commented starting scenario written by ``negosim new NAME``.

The template is a complete scenario that validates and runs as written (a
test runs it): a student replaces the invented case with their own, section
by section, and checks with ``negosim validate`` as they go.
"""

from __future__ import annotations

import re

TEMPLATE = """\
# {title}: a starting scenario written by `negosim new`.
#
# It is a complete, runnable example of an invented case: two ministers who
# might meet on the sidelines of a two-day summit. Replace it with your own
# case section by section; run `negosim validate {name}.yaml` after each
# change, `negosim explain {name}.yaml` to read it back in plain words and
# `negosim run {name}.yaml` for the odds. The format is in
# docs/scenario-format.md.
#
# The rule of honest scenarios: every number either quotes the sentence of a
# source it comes from (`source:`) or says it is a guess and why
# (`assumption:`). Model the situation as it was known on one day, before the
# outcome.
id: {name}
title: {title}
description: >
  Minister A wants a meeting with Minister B at the summit. B will only
  meet if A asks formally. (Invented: replace with your case.)

sources:
  # One entry per article or statement you quote below.
  report:
    title: An invented news report (replace with the article you model)
    outlet: Example Wire
    date: 2024-06-03

calendar:
  timezone: Europe/Vienna        # IANA name of the venue's time zone
  start: 2024-06-03 08:00        # the day of your source, venue-local time
  horizon: 2024-06-05 20:00      # when the question closes
  windows:
    summit:
      text: The summit, two days (an assumption for this example).
      start: 2024-06-04 09:00
      end: 2024-06-05 18:00

params:
  # Named numbers. Override any of them with `--set name=value`.
  p_formal:
    kind: probability
    default: 0.4
    source: '"A is weighing a formal request," the report says.'
    assumption: Weighing it, not ruling it out; 0.4 is our reading.
  decide_median:
    kind: duration
    default: 12h
    assumption: The report gives no timing; half a day is a guess.
  p_accept:
    kind: probability
    default: 0.7
    assumption: B has met A before; a formal request is usually accepted.

facts:
  # The shared world state that actions change and conditions read.
  formal_request:
    type: bool
    initial: false
    text: A has asked for the meeting formally.
  tension:
    type: number
    initial: 4
    low: 0
    high: 10
    text: Tension between A and B, 0 (calm) to 10 (crisis).
    assumption: Strained but talking; 4 of 10 is our reading of the report.

actors:
  a:
    name: Minister A
    short: A
    present:
      - window: summit
  b:
    name: Minister B
    short: B
    present:
      - window: summit
        # B's arrival is uncertain: up to 6 hours after the summit opens.
        arrival: {{dist: uniform, low: 0h, high: 6h}}

protocol:
  # The meeting's state machine.
  states:
    informal: A has sounded B out informally.
    accepted: B has agreed to meet.
    held: The meeting took place.
    declined: B has said no.
  initial: informal
  transitions:
    - {{trigger: accept, source: informal, dest: accepted}}
    - {{trigger: decline, source: informal, dest: declined}}
    - {{trigger: meet, source: accepted, dest: held}}
  outcomes:
    success: [held]
    failure: [declined]

preconditions:
  # Conditions one side insists on; reports say which ones blocked failed runs.
  formal:
    text: A must request the meeting formally.
    insisted_by: b
    holds: formal_request
    source: '"B wants a formal request," an official said.'

actions:
  a_decides:
    actor: a
    text: A decides whether to ask formally
    from: informal                 # protocol state(s) in which it can happen
    guard: not formal_request
    delay: {{dist: lognormal, median: decide_median, p90: 2d}}
    options:
      ask_formally:
        text: A asks formally
        weight: p_formal
        set: {{formal_request: true}}
      wait:
        text: A waits
        weight: 1 - p_formal
  b_answers:
    actor: b
    text: B answers the request
    from: informal
    requires: [formal]
    delay: {{dist: lognormal, median: 4h, p90: 1d}}
    options:
      accept:
        text: B agrees to meet
        # Guarded expressions: weights may read facts and parameters.
        weight: p_accept if tension < 4 else p_accept / 2
        trigger: accept
      decline:
        text: B declines
        weight: 1 - (p_accept if tension < 4 else p_accept / 2)
        trigger: decline
  meet:
    actor: a
    text: A and B meet
    from: accepted
    guard: present('a') and present('b') and in_window('summit')
    delay: {{dist: triangular, min: 1h, mode: 3h, max: 8h}}
    trigger: meet

events:
  # Outside shocks: scheduled (`at:`) or random (`rate:` per day).
  warm_words:
    text: B's spokesperson speaks warmly of A
    at: 2024-06-04 10:00
    set: {{tension: tension - 1}}
"""


def scaffold(name: str) -> str:
    """The starting scenario for ``name`` (its id is ``name`` made id-safe)."""
    ident = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-_")[:64] or "my-scenario"
    title = ident.replace("-", " ").replace("_", " ").capitalize()
    return TEMPLATE.format(name=ident, title=title)
