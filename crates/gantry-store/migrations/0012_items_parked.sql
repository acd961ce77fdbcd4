-- A map node's instances waiting for approval (SPEC 2.1: each instance has
-- its own approval): MapState::parked. Null on nodes that are not maps, like
-- the other instance counts; existing maps read as none parked.
ALTER TABLE nodes ADD COLUMN items_parked int;
