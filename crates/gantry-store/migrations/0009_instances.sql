-- for_each instances (SPEC 2.1). An instance is a row of `nodes` whose idx
-- is a slot above every node index (gantry-dag's instance.rs packs the node
-- and the item index into it), so claims, leases, fencing, results and
-- redelivery serve instances unchanged, and a node's instances are one
-- primary-key range in item order. Its node_id is `NODE[INDEX]`, which no
-- node id can be. The map node's row counts its instances.
-- Every column is nullable without a default: ADD COLUMN is free.
ALTER TABLE nodes
    ADD COLUMN item jsonb,
    ADD COLUMN items integer CHECK (items >= 0),
    ADD COLUMN next_item integer CHECK (next_item >= 0),
    ADD COLUMN items_active integer CHECK (items_active >= 0),
    ADD COLUMN items_succeeded integer CHECK (items_succeeded >= 0),
    ADD COLUMN failed_item integer CHECK (failed_item >= 0);
