"""CatalogService over gRPC: CatalogWriter (api-write: commands) and CatalogReader (api-read: queries).

Requests arrive checked against the contract's buf.validate rules (culture_grpc's interceptor); the
servicers add only what depends on the RPC, the update mask or the data (culture_catalog.validation).

Each answers UNIMPLEMENTED for the other role's RPCs (the generated base class), so a client that
dials the wrong role learns it at once.
"""

from __future__ import annotations

import uuid
from typing import Any

import grpc

from culture.catalog.v1 import catalog_pb2, catalog_pb2_grpc
from culture_catalog import documents as d
from culture_catalog import store
from culture_catalog import validation as v
from culture_catalog.cache import WorkCache
from culture_catalog.profiles import to_proto
from culture_catalog.store import CatalogStore
from culture_events import correlation
from culture_grpc.errors import invalid_argument, not_found

_PROFILE_FIELDS = ("display_name", "bio", "avatar_url", "favorite_genre_slugs")
_REVIEW_FIELDS = ("rating", "title", "body")


def _raise(violations: v.Violations) -> None:
    if violations:
        raise invalid_argument(violations)


def _mask(
    paths: Any, allowed: tuple[str, ...], default: tuple[str, ...], field: str = "update_mask"
) -> set[str]:
    given = set(paths)
    if not given:
        return set(default)
    unknown = sorted(p for p in given if p.split(".")[0] not in allowed)
    if unknown:
        raise invalid_argument({field: f"unknown or read-only fields {unknown}; writable: {list(allowed)}"})
    return given


class CatalogWriter(catalog_pb2_grpc.CatalogServiceServicer):
    """The commands (api-write). Every change and its event commit in one transaction."""

    def __init__(self, store: CatalogStore, cache: WorkCache) -> None:
        self.store = store
        self.cache = cache

    async def CreateWork(
        self, request: catalog_pb2.CreateWorkRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateWorkResponse:
        _raise(v.check_work(request.work))
        doc = await self.store.create_work(request.work, request.creator_user_id, request.request_id)
        return catalog_pb2.CreateWorkResponse(work=d.work_to_proto(doc))

    async def UpdateWork(
        self, request: catalog_pb2.UpdateWorkRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateWorkResponse:
        work = request.work
        fields = _mask(
            request.update_mask.paths,
            d.WORK_FIELDS,
            tuple(f for f in d.WORK_FIELDS if f not in ("book", "film"))
            + ((work.WhichOneof("details"),) if work.WhichOneof("details") else ()),
        )
        violations: v.Violations = []
        if not work.work_id:
            violations.append(("work.work_id", "required: the id of the work to change"))
        if work.version <= 0:
            violations.append(("work.version", "required: the version of the work as read"))
        _raise(violations + v.check_work(work, fields=fields))
        doc = await self.store.update_work(work, fields, request.editor_user_id)
        await self.cache.invalidate(work.work_id)
        return catalog_pb2.UpdateWorkResponse(work=d.work_to_proto(doc))

    async def CreateReview(
        self, request: catalog_pb2.CreateReviewRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.CreateReviewResponse:
        doc, _new = await self.store.create_review(
            request.work_id,
            request.author_user_id,
            request.rating,
            request.title,
            request.body,
            request.request_id,
        )
        await self.cache.invalidate(request.work_id)
        job_id = correlation.current() or uuid.uuid4().hex
        return catalog_pb2.CreateReviewResponse(review=d.review_to_proto(doc), job_id=job_id)

    async def UpdateReview(
        self, request: catalog_pb2.UpdateReviewRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateReviewResponse:
        fields = _mask(request.update_mask.paths, _REVIEW_FIELDS, _REVIEW_FIELDS)
        _raise(v.check_review_fields(fields, request.rating))
        doc = await self.store.update_review(
            request.review_id, request.author_user_id, {f: getattr(request, f) for f in fields}
        )
        await self.cache.invalidate(doc["work_id"])
        return catalog_pb2.UpdateReviewResponse(review=d.review_to_proto(doc))

    async def DeleteReview(
        self, request: catalog_pb2.DeleteReviewRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.DeleteReviewResponse:
        doc, version = await self.store.delete_review(request.review_id, request.author_user_id)
        await self.cache.invalidate(doc["work_id"])
        return catalog_pb2.DeleteReviewResponse(version=version)

    async def UpdateProfile(
        self, request: catalog_pb2.UpdateProfileRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.UpdateProfileResponse:
        fields = _mask(request.update_mask.paths, _PROFILE_FIELDS, _PROFILE_FIELDS)
        profile = request.profile
        _raise(v.check_profile(profile, fields))
        changes = {
            f: (list(getattr(profile, f)) if f == "favorite_genre_slugs" else getattr(profile, f))
            for f in fields
        }
        doc = await self.store.update_profile(profile.user_id, changes)
        return catalog_pb2.UpdateProfileResponse(profile=to_proto(doc))


class CatalogReader(catalog_pb2_grpc.CatalogServiceServicer):
    """The queries (api-read); GetWork and BatchGetWorks read through the Redis cache."""

    def __init__(self, store: CatalogStore, cache: WorkCache | None) -> None:
        self.store = store
        self.cache = cache

    async def _load(self, ids: Any) -> dict[str, catalog_pb2.Work]:
        return {k: d.work_to_proto(doc) for k, doc in (await self.store.get_works(list(ids))).items()}

    async def _works(self, ids: list[str]) -> dict[str, catalog_pb2.Work]:
        if self.cache is None:
            return await self._load(ids)
        return await self.cache.get_many(ids, self._load)

    async def GetWork(
        self, request: catalog_pb2.GetWorkRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetWorkResponse:
        found = await self._works([request.work_id])
        if request.work_id not in found:
            raise not_found("work", request.work_id)
        return catalog_pb2.GetWorkResponse(work=found[request.work_id])

    async def BatchGetWorks(
        self, request: catalog_pb2.BatchGetWorksRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.BatchGetWorksResponse:
        ids = list(request.work_ids)
        found = await self._works(ids)
        return catalog_pb2.BatchGetWorksResponse(
            works=[found[i] for i in dict.fromkeys(ids) if i in found],
            missing_work_ids=[i for i in dict.fromkeys(ids) if i not in found],
        )

    @staticmethod
    def _filters(
        kind: int, genres: list[str], tags: list[str], min_year: int = 0, max_year: int = 0
    ) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if kind:
            if kind not in d.KINDS:
                raise invalid_argument({"kind": "unknown kind"})
            query["kind"] = d.KINDS[kind]
        if genres:
            query["genre_ancestors"] = genres[0] if len(genres) == 1 else {"$in": genres}
        if tags:
            query["tags"] = tags[0] if len(tags) == 1 else {"$all": tags}
        years: dict[str, int] = {}
        if min_year:
            years["$gte"] = min_year
        if max_year:
            years["$lte"] = max_year
        if years:
            query["release_year"] = years
        return query

    async def ListWorks(
        self, request: catalog_pb2.ListWorksRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListWorksResponse:
        _raise(v.check_year_range(request.min_year, request.max_year))
        query = self._filters(
            request.kind,
            [request.genre_path] if request.genre_path else [],
            [request.tag_slug] if request.tag_slug else [],
            request.min_year,
            request.max_year,
        )
        after = self._cursor(request.page_token, query)
        size = v.page_size_of(request.page_size)
        docs = await self.store.list_works(query, after, size + 1)
        token = d.encode_cursor(docs[size - 1]["_id"], query) if len(docs) > size else ""
        return catalog_pb2.ListWorksResponse(
            works=[d.work_to_proto(x) for x in docs[:size]], next_page_token=token
        )

    @staticmethod
    def _cursor(token: str, filters: dict[str, Any]) -> Any:
        if not token:
            return None
        try:
            return d.decode_cursor(token, filters)
        except ValueError as exc:
            raise invalid_argument({"page_token": str(exc)}) from None

    async def SearchWorks(
        self, request: catalog_pb2.SearchWorksRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.SearchWorksResponse:
        query = self._filters(request.kind, list(request.genre_slugs), list(request.tag_slugs))
        tokens = d.query_tokens(request.query)
        offset = self._cursor(request.page_token, {**query, "q": tokens}) or 0
        if not isinstance(offset, int) or offset < 0:
            raise invalid_argument({"page_token": "not a page token of this search"})
        if tokens:
            # SecantusDB plans an index only for a query of one predicate: ask the multikey index
            # for the most selective token, and match the rest in code (see docs/catalog.md)
            candidates = await self.store.search_candidates({"search_tokens": d.most_selective(tokens)})
            docs = [x for x in candidates if d.matches(x, query, tokens)][: store.SEARCH_CANDIDATES]
            docs.sort(key=lambda x: (-d.rank(x, tokens), x["_id"]))
        else:
            docs = await self.store.search_candidates(query, limit=store.SEARCH_CANDIDATES)
        size = v.page_size_of(request.page_size)
        page = docs[offset : offset + size]
        token = d.encode_cursor(offset + size, {**query, "q": tokens}) if len(docs) > offset + size else ""
        return catalog_pb2.SearchWorksResponse(
            works=[d.work_to_proto(x) for x in page], next_page_token=token
        )

    async def ListReviews(
        self, request: catalog_pb2.ListReviewsRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.ListReviewsResponse:
        which = request.WhichOneof("filter")
        assert which is not None  # the contract requires one (buf.validate.oneof)
        query = {which: getattr(request, which)}
        after = self._cursor(request.page_token, query)
        size = v.page_size_of(request.page_size)
        docs = await self.store.list_reviews(query, after, size + 1)
        token = d.encode_cursor(docs[size - 1]["_id"], query) if len(docs) > size else ""
        return catalog_pb2.ListReviewsResponse(
            reviews=[d.review_to_proto(x) for x in docs[:size]], next_page_token=token
        )

    async def GetProfile(
        self, request: catalog_pb2.GetProfileRequest, context: grpc.aio.ServicerContext
    ) -> catalog_pb2.GetProfileResponse:
        doc = await self.store.get(request.user_id)
        if doc is None:
            raise not_found("profile", request.user_id)
        return catalog_pb2.GetProfileResponse(profile=to_proto(doc))

