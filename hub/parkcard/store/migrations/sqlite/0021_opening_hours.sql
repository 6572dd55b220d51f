-- The park's opening hours, in minutes after local midnight (the hub's time zone): a terminal offline while the
-- park is open is an alert on the live fleet page. NULL: no opening hours set, no such alert.
ALTER TABLE parks ADD COLUMN opens_min INTEGER;
ALTER TABLE parks ADD COLUMN closes_min INTEGER;
