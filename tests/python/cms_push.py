"""Pushes changes from a CMS to weitere the way the README describes: publish, update, retract.

Usage: WEITERE_WRITE_TOKEN=... python cms_push.py HOST:PORT STUBS_DIR
Runs against a server holding the built-in sample (started with the same write token). Exits non-zero
on failure and leaves the index as it found it.
"""
import os
import sys

import grpc
from google.protobuf.timestamp_pb2 import Timestamp


def main(target: str, stubs_dir: str) -> None:
    sys.path.insert(0, stubs_dir)
    from weitere.v1 import related_pb2 as pb
    from weitere.v1 import related_pb2_grpc as rpc

    # With TLS: grpc.secure_channel(target, grpc.ssl_channel_credentials(open("ca.pem", "rb").read()))
    stub = rpc.RelatedStoriesStub(grpc.insecure_channel(target))
    auth = [("authorization", f"Bearer {os.environ['WEITERE_WRITE_TOKEN']}")]

    def upsert(*articles):
        reply = stub.UpsertArticles(pb.UpsertArticlesRequest(articles=articles), metadata=auth, timeout=5)
        for result in reply.results:  # per article: accepted, or why not
            if not result.accepted:
                raise SystemExit(f"{result.id} rejected: {result.error}")

    def related_ids(article_id):
        reply = stub.Related(pb.RelatedRequest(article_id=article_id, k=5), timeout=5)
        return [story.id for story in reply.stories]

    published = Timestamp()
    published.GetCurrentTime()
    story = pb.Article(
        id="cms-4711",
        title="Gewerkschaft GPA-djp kritisiert All-in-Verträge",
        body="Die Gewerkschaft GPA-djp fordert mehr Transparenz bei All-in-Verträgen. Arbeitnehmer sollen "
        "mit dem All-in-Rechner prüfen, ob das Grundgehalt stimmt.",
        section="Wirtschaft",
        lang="de",
        url="https://example.org/cms-4711",
        published_at=published,
    )

    upsert(story)  # publish: durable and searchable when the call returns
    assert "cms-4711" in related_ids("gnad-test-00000"), "published story not recommended"
    print("published: cms-4711 is recommended under gnad-test-00000")

    story.title = "Update: Gewerkschaft GPA-djp kritisiert All-in-Verträge scharf"
    upsert(story)  # update: same id, replaces text and metadata
    assert stub.GetArticle(pb.GetArticleRequest(id="cms-4711"), timeout=5).title == story.title
    print("updated:   the new title is served")

    reply = stub.DeleteArticles(pb.DeleteArticlesRequest(ids=["cms-4711", "never-existed"]), metadata=auth, timeout=5)
    assert [(r.id, r.accepted) for r in reply.results] == [("cms-4711", True), ("never-existed", False)]
    assert "cms-4711" not in related_ids("gnad-test-00000"), "retracted story still recommended"
    print(f"retracted: cms-4711 is gone; never-existed: {reply.results[1].error}")

    try:
        stub.UpsertArticles(pb.UpsertArticlesRequest(articles=[story]), timeout=5)
        raise SystemExit("a write without the token was accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.code()
        print(f"no token:  {error.code().name}: {error.details()}")
    print("python CMS push check: 4 passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
