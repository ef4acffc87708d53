"""Dated reference records: the kinds of analyst-maintained records that are active between two dates
(situations, employer disputes). Each kind is a declaration (`declaration.DatedRecordKind`); one router
factory and one service serve them all, so a new kind costs a declaration, not a folder of copies."""
