"""A booth's shift counters brought up to its journal at start (protocol/SPEC.md §4.14 guarantee 3). Loaded by
roles/pos.py only when the journal holds records after the last seq the counters hold: a power cut came between
a sale's journal commit and the counters' save, or a shift record's and the shift file's.
"""

from protocol import staff as S
from protocol.errors import Malformed
from protocol.record import KIND_DEBIT, KIND_REVERSAL, KIND_SHIFT, RECORD_SIZE, Record
from protocol.staff import PHASE_CLOSE, PHASE_OPEN
from terminal.journal import COMMITTED, VOIDED


def recover(shift, journal):
    """Count into shift what the journal holds after the last seq its counters hold: the approved sales and
    reversals, and the shift records; return how many records were read. A shift file from before the counters
    named a seq takes the journal as counted."""
    if shift.counted_seq is None:
        shift.counted_seq = journal.last_seq()
        shift.save()
        return 0
    if journal.last_seq() <= shift.counted_seq:
        return 0
    found = []
    journal.each_after(shift.counted_seq, lambda seq, buf, at: found.append(bytes(buf[at:at + RECORD_SIZE])))
    for raw in found:
        try:
            rec = Record.decode(raw)
        except Malformed:
            continue            # no record this firmware writes: nothing to count
        status = journal.status(rec.seq)
        tag = S.tag_of(rec)
        in_shift = shift.is_open() and tag == shift.tag
        if rec.kind == KIND_SHIFT and rec.item == PHASE_OPEN:
            shift.begin(rec.seq, tag, rec.card_no)
        elif rec.kind == KIND_SHIFT and rec.item == PHASE_CLOSE:
            shift.end(rec.seq)
        elif rec.kind == KIND_DEBIT and status == COMMITTED:
            shift.tally(rec.seq, rec.card_no, rec.amount_cents, rec.time_s, False, 0, in_shift)
        elif rec.kind == KIND_REVERSAL and status == COMMITTED:
            shift.tally(rec.seq, rec.card_no, rec.amount_cents, rec.time_s, True, rec.seq - rec.item, in_shift)
        elif rec.kind == KIND_REVERSAL and status != VOIDED and in_shift:
            shift.mark_reversed(rec.seq - rec.item)      # its outcome is open: the card's next tap settles it
    shift.counted_seq = journal.last_seq()
    shift.save()
    return len(found)
