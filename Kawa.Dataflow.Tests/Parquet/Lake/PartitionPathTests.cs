using System.Text;
using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

public sealed class PartitionPathTests
{
    private sealed record Event(string Region, DateTime At, int Shard);

    private static Message<Event> At(DateTimeOffset timestamp, string? topic = "logs.web", string? key = null) =>
        new(new Event("eu", default, 0), key, topic, MessageAttributes.CreateBuilder().Set(MessageAttributeKeys.Timestamp, timestamp).Build());

    [Test]
    public void Evaluate_DateAndHourTemplate_UsesTheMessageTimestampInUtc()
    {
        var path = PartitionPath<Event>.Parse("dt={ts:yyyy-MM-dd}/hour={ts:HH}");

        // 23:30 at UTC-5 is 04:30 the next day in UTC.
        var result = path.Evaluate(At(new DateTimeOffset(2024, 4, 30, 23, 30, 0, TimeSpan.FromHours(-5))));

        Assert.That(result, Is.EqualTo("dt=2024-05-01/hour=04"));
    }

    [Test]
    public void Evaluate_ConsecutiveMessagesAcrossSecondHourAndDay_EachGetsItsOwnPartition()
    {
        // The path and the timestamp text are reused while messages stay in the same second; every change must show.
        var path = PartitionPath<Event>.Parse("dt={ts:yyyy-MM-dd}/hour={ts:HH}");
        var start = new DateTimeOffset(2024, 4, 30, 22, 59, 59, 900, TimeSpan.Zero);
        var expected = new[]
        {
            (start, "dt=2024-04-30/hour=22"),
            (start.AddMilliseconds(50), "dt=2024-04-30/hour=22"),
            (start.AddMilliseconds(100), "dt=2024-04-30/hour=23"),
            (start.AddHours(1).AddMilliseconds(100), "dt=2024-05-01/hour=00"),
            (start, "dt=2024-04-30/hour=22"),
            (start.AddHours(1).AddMilliseconds(100).ToOffset(TimeSpan.FromHours(2)), "dt=2024-05-01/hour=00"),
        };

        var results = expected.Select(e => path.Evaluate(At(e.Item1))).ToArray();

        Assert.That(results, Is.EqualTo(expected.Select(e => e.Item2)));
    }

    [Test]
    public void Evaluate_FractionalSecondFormat_NotReusedWithinASecond()
    {
        var path = PartitionPath<Event>.Parse("t={ts:HHmmss.fff}");
        var start = new DateTimeOffset(2024, 4, 30, 22, 59, 59, 100, TimeSpan.Zero);

        Assert.That(path.Evaluate(At(start)), Is.EqualTo("t=225959.100"));
        Assert.That(path.Evaluate(At(start.AddMilliseconds(5))), Is.EqualTo("t=225959.105"));
    }

    [Test]
    public void Evaluate_ManyThreadsOverManyDays_EveryMessageGetsItsOwnDay()
    {
        var path = PartitionPath<Event>.Parse("dt={ts:yyyy-MM-dd}");
        var start = new DateTimeOffset(2024, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var wrong = 0;

        Parallel.For(0, 20_000, i =>
        {
            var at = start.AddDays(i % 17).AddSeconds(i % 5);
            if (path.Evaluate(At(at)) != $"dt={at:yyyy-MM-dd}")
            {
                Interlocked.Increment(ref wrong);
            }
        });

        Assert.That(wrong, Is.Zero);
    }

    [Test]
    public void Evaluate_FormatProducingASlash_StaysOneSegment()
    {
        var path = PartitionPath<Event>.Parse("m={ts:yyyy/MM}");

        Assert.That(path.Evaluate(At(new DateTimeOffset(2024, 5, 1, 0, 0, 0, TimeSpan.Zero))), Is.EqualTo("m=2024%2F05"));
    }

    [Test]
    public void Evaluate_NoTimestampAttribute_FallsBackToReceivedAtThenTheClock()
    {
        var clock = new ManualTimeProvider(new DateTimeOffset(2030, 1, 2, 3, 0, 0, TimeSpan.Zero));
        var path = PartitionPath<Event>.Parse("dt={ts:yyyy-MM-dd}", new PartitionPathOptions<Event> { TimeProvider = clock });
        var received = new Message<Event>(new Event("eu", default, 0), Attributes: MessageAttributes.CreateBuilder()
            .Set(MessageAttributeKeys.ReceivedAt, new DateTimeOffset(2025, 6, 7, 0, 0, 0, TimeSpan.Zero)).Build());

        Assert.That(path.Evaluate(received), Is.EqualTo("dt=2025-06-07"));
        Assert.That(path.Evaluate(new Message<Event>(new Event("eu", default, 0))), Is.EqualTo("dt=2030-01-02"));
    }

    [Test]
    public void Evaluate_TimestampSelector_OverridesTheAttributes()
    {
        var path = PartitionPath<Event>.Parse("dt={ts:yyyyMMdd}", new PartitionPathOptions<Event>
        {
            Timestamp = m => new DateTimeOffset(2001, 2, 3, 0, 0, 0, TimeSpan.Zero),
        });

        Assert.That(path.Evaluate(At(DateTimeOffset.UnixEpoch)), Is.EqualTo("dt=20010203"));
    }

    [Test]
    public void Evaluate_DateTimeFieldOfEachKind_ConvertedToUtcByKind()
    {
        var local = new DateTime(2024, 5, 1, 12, 0, 0, DateTimeKind.Local);
        var options = new PartitionPathOptions<Event> { Field = (m, name) => name == "at" ? m.Value.At : null };
        var assumeUtc = PartitionPath<Event>.Parse("h={field:at:yyyy-MM-dd HH}", options);
        var assumeLocal = PartitionPath<Event>.Parse("h={field:at:yyyy-MM-dd HH}", new PartitionPathOptions<Event> { Field = options.Field, UnspecifiedDateTimes = UnspecifiedDateTimeHandling.AssumeLocal });
        var reject = PartitionPath<Event>.Parse("h={field:at:yyyy-MM-dd HH}", new PartitionPathOptions<Event> { Field = options.Field, UnspecifiedDateTimes = UnspecifiedDateTimeHandling.Reject });
        Message<Event> With(DateTime at) => new(new Event("eu", at, 0));
        var unspecified = new DateTime(2024, 5, 1, 12, 0, 0, DateTimeKind.Unspecified);

        Assert.Multiple(() =>
        {
            Assert.That(assumeUtc.Evaluate(With(new DateTime(2024, 5, 1, 12, 0, 0, DateTimeKind.Utc))), Is.EqualTo("h=2024-05-01 12"));
            Assert.That(assumeUtc.Evaluate(With(local)), Is.EqualTo("h=" + local.ToUniversalTime().ToString("yyyy-MM-dd HH")));
            Assert.That(assumeUtc.Evaluate(With(unspecified)), Is.EqualTo("h=2024-05-01 12"));
            Assert.That(assumeLocal.Evaluate(With(unspecified)), Is.EqualTo("h=" + DateTime.SpecifyKind(unspecified, DateTimeKind.Local).ToUniversalTime().ToString("yyyy-MM-dd HH")));
        });
        var error = Assert.Throws<FormatException>(() => reject.Evaluate(With(unspecified)));
        Assert.That(error!.Message, Does.Contain("{field:at:yyyy-MM-dd HH}").And.Contain("Unspecified"));
    }

    [Test]
    public void Evaluate_TopicKeySubjectAttributeAndField_EscapedValues()
    {
        var path = PartitionPath<Event>.Parse("topic={topic}/key={key}/s={subject}/stream={attr:stream}/seq={attr:stream.sequence:D8}/region={field:Region}",
            new PartitionPathOptions<Event> { Field = (m, name) => name == "Region" ? m.Value.Region : null });
        var message = new Message<Event>(new Event("../us/east", default, 0), "k/1", "logs.web", MessageAttributes.CreateBuilder()
            .Set(MessageAttributeKeys.Subject, "logs.web.eu")
            .Set(MessageAttributeKeys.Stream, "LOGS")
            .Set(MessageAttributeKeys.StreamSequence, 42UL)
            .Build());

        Assert.That(path.Evaluate(message), Is.EqualTo("topic=logs.web/key=k%2F1/s=logs.web.eu/stream=LOGS/seq=00000042/region=%2E.%2Fus%2Feast"));
    }

    [Test]
    public void Evaluate_MissingValues_BecomeTheHiveDefaultPartition()
    {
        var path = PartitionPath<Event>.Parse("{topic}/key={key}/x={attr:missing}");

        Assert.That(path.Evaluate(new Message<Event>(new Event("eu", default, 0))),
            Is.EqualTo("__HIVE_DEFAULT_PARTITION__/key=__HIVE_DEFAULT_PARTITION__/x=__HIVE_DEFAULT_PARTITION__"));
    }

    [Test]
    public void FromDelegate_HostilePath_EverySegmentEscaped()
    {
        var path = PartitionPath<Event>.FromDelegate(m => m.Topic);

        Assert.That(path.Evaluate(At(DateTimeOffset.UnixEpoch, topic: "../../etc/passwd")), Is.EqualTo("%2E%2E/%2E%2E/etc/passwd"));
        Assert.That(path.Evaluate(At(DateTimeOffset.UnixEpoch, topic: "a//b")), Is.EqualTo("a/__HIVE_DEFAULT_PARTITION__/b"));
        Assert.That(path.Evaluate(At(DateTimeOffset.UnixEpoch, topic: null)), Is.Empty);
    }

    [TestCase("dt={ts:yyyy-MM-dd", "not closed")]
    [TestCase("dt=}", "has no '{'")]
    [TestCase("dt={ts}", "needs a format")]
    [TestCase("dt={nope}", "unknown token")]
    [TestCase("/dt={topic}", "empty segment")]
    [TestCase("dt={topic}/", "empty segment")]
    [TestCase("a//b", "empty segment")]
    [TestCase("../{topic}", "starts with '.'")]
    [TestCase(".hidden/{topic}", "starts with '.'")]
    [TestCase("a\\b/{topic}", "not allowed")]
    [TestCase("a:b/{topic}", "not allowed")]
    [TestCase("x={field:Region}", "Field is not set")]
    [TestCase("x={attr}", "needs a name")]
    public void Parse_MalformedTemplate_ThrowsFormatExceptionSayingWhy(string template, string why)
    {
        var error = Assert.Throws<FormatException>(() => PartitionPath<Event>.Parse(template));

        Assert.That(error!.Message, Does.Contain(template).And.Contain(why));
    }

    [Test]
    public void Parse_EmptyTemplate_NoPartitioning()
    {
        var path = PartitionPath<Event>.Parse("");

        Assert.That(path.Evaluate(At(DateTimeOffset.UnixEpoch)), Is.Empty);
        Assert.That(path.PathFor(At(DateTimeOffset.UnixEpoch), "part.parquet"), Is.EqualTo("part.parquet"));
    }

    /// <summary>Property test end to end: hostile topics and keys, through the storage, always land under the root.</summary>
    [Test]
    public async Task PathFor_RandomHostileTopicsAndKeys_FilesAlwaysCommittedInsideTheLakeRoot()
    {
        using var root = new TempDirectory();
        var storage = new LocalLakeStorage(new LocalLakeStorageOptions { RootPath = root.Path, InstanceId = "prop", Fsync = FsyncMode.None });
        var path = PartitionPath<Event>.Parse("t={topic}/{key}/dt={ts:yyyy-MM-dd}");
        var random = new Random(20240501);
        string[] pieces = ["..", ".", "/", "\\", "\0", "%", "~", "\n", "é", "🚀", "\uD800", " ", "_", "a", "b", "etc", "C:"];
        for (var n = 0; n < 300; n++)
        {
            string Hostile()
            {
                var builder = new StringBuilder();
                for (var i = random.Next(0, 40); i > 0; i--)
                {
                    builder.Append(random.Next(3) == 0 ? ((char)random.Next(0, 0x3000)).ToString() : pieces[random.Next(pieces.Length)]);
                }
                return builder.ToString();
            }
            var message = At(DateTimeOffset.UnixEpoch.AddDays(n), Hostile(), Hostile());
            var relative = path.PathFor(message, $"part-{n}.parquet");

            await using var file = await storage.CreateAsync(relative);
            await file.CommitAsync();

            var full = Path.GetFullPath(Path.Combine(root.Path, relative));
            Assert.That(full, Does.StartWith(root.Path + Path.DirectorySeparatorChar), relative);
            Assert.That(File.Exists(full), Is.True, relative);
            Assert.That(relative.Split('/'), Has.Length.EqualTo(4), relative);
        }
        Assert.That(Directory.EnumerateFiles(Path.GetDirectoryName(root.Path)!, "part-*.parquet"), Is.Empty, "nothing escaped to the parent");
        var listed = await LocalLakeStorageTests.ToListAsync(storage.ListAsync(""));
        Assert.That(listed, Has.Count.EqualTo(300));
    }
}
