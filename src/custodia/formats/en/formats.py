"""The one way Custodia shows dates and times (settings.FORMAT_MODULE_PATH).

Templates name these formats (`{{ visit.starts_at|date:"DATE_FORMAT" }}`), never a format
string of their own (tests/web/test_date_format.py checks), so every page, email and print
shows a day as "Tue 8 Dec 2026" and a time as "09:30", in the business's time zone.
"""

from __future__ import annotations

# A day: "Tue 8 Dec 2026".
DATE_FORMAT = "D j M Y"
# A time of day, 24-hour: "09:30".
TIME_FORMAT = "H:i"
# A moment: "Tue 8 Dec 2026, 09:30".
DATETIME_FORMAT = "D j M Y, H:i"
# A day without its year, for a week's days and ranges inside one year: "Tue 8 Dec".
MONTH_DAY_FORMAT = "D j M"
# A month: "December 2026".
YEAR_MONTH_FORMAT = "F Y"
# Short forms are the same day, so allauth's pages and ours agree.
SHORT_DATE_FORMAT = DATE_FORMAT
# A precise moment, to the second, for the audit trail and jobs: "Tue 8 Dec 2026, 09:30:05".
SHORT_DATETIME_FORMAT = "D j M Y, H:i:s"
