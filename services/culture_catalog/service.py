"""CatalogService over gRPC: GetProfile for now (the other RPCs answer UNIMPLEMENTED)."""

from __future__ import annotations

import grpc

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture_catalog.profiles import ProfileStore, to_proto
from culture_grpc.errors import invalid_argument, not_found


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    """The read side of the catalog's profiles."""

    def __init__(self, store: ProfileStore) -> None:
        self.store = store

    async def GetProfile(self, request: catalog_pb2.GetProfileRequest,
                         context: grpc.aio.ServicerContext) -> catalog_pb2.GetProfileResponse:
        if not request.user_id:
            raise invalid_argument({"user_id": "required"})
        doc = await self.store.get(request.user_id)
        if doc is None:
            raise not_found("profile", request.user_id)
        return catalog_pb2.GetProfileResponse(profile=to_proto(doc))
