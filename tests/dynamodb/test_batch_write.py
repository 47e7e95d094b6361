"""BatchWriteItem on one LB servicer, in process: many items in one call, all-or-nothing validation."""

from __future__ import annotations

import grpc
import pytest

from racelab.v1 import dynamodb_pb2 as db, dynamodb_pb2_grpc
from services.dynamodb.service import MAX_BATCH_WRITE, LoadBalancerService
from services.dynamodb.store import TableStore

pytestmark = pytest.mark.asyncio


async def _serve(store: TableStore):
    server = grpc.aio.server()
    dynamodb_pb2_grpc.add_DynamoDBServicer_to_server(LoadBalancerService("lb-009", store), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, grpc.aio.insecure_channel(f"127.0.0.1:{port}")


def _put(pk: str, sk: str = "lease", **attrs: str) -> db.PutRequest:
    return db.PutRequest(key=db.ItemKey(partition_key=pk, sort_key=sk), attributes=attrs)


async def test_batch_write_writes_every_item_and_bumps_versions():
    store = TableStore()
    server, ch = await _serve(store)
    try:
        stub = dynamodb_pb2_grpc.DynamoDBStub(ch)
        puts = [_put(f"droplet-{d}", host="dwfm-1") for d in range(300)] + [_put("host-dwfm-1", "heartbeat")]
        reply = await stub.BatchWriteItem(db.BatchWriteItemRequest(table="droplet-leases", puts=puts))
        assert reply.written == 301 and reply.lb_id == "lb-009"
        assert store.count == 301
        await stub.BatchWriteItem(db.BatchWriteItemRequest(table="droplet-leases", puts=puts[:1]))
        got = await stub.GetItem(db.GetItemRequest(table="droplet-leases", key=puts[0].key))
        assert got.found and got.item.version == 2 and got.item.attributes["host"] == "dwfm-1"
    finally:
        await ch.close()
        await server.stop(None)


@pytest.mark.parametrize("request_, words", [
    (db.BatchWriteItemRequest(table="t"), "expected 1 to 1000 items, got 0"),
    (db.BatchWriteItemRequest(table="t", puts=[_put(f"p{i}") for i in range(MAX_BATCH_WRITE + 1)]),
     "got 1001"),
    (db.BatchWriteItemRequest(table="", puts=[_put("p")]), "table is empty"),
    (db.BatchWriteItemRequest(table="t", puts=[_put("ok"), _put("")]), "puts[1]: key.partition_key is empty"),
])
async def test_bad_batches_are_invalid_argument_and_write_nothing(request_, words):
    store = TableStore()
    server, ch = await _serve(store)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await dynamodb_pb2_grpc.DynamoDBStub(ch).BatchWriteItem(request_)
        assert err.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert words in err.value.details()
        assert store.count == 0
    finally:
        await ch.close()
        await server.stop(None)
