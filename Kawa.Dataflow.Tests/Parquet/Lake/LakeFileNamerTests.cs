using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

public sealed class LakeFileNamerTests
{
    private static readonly DateTimeOffset Frozen = new(2024, 5, 1, 10, 11, 12, 123, TimeSpan.Zero);

    [Test]
    public void Next_FrozenClock_HasTheDocumentedShape()
    {
        var namer = new LakeFileNamer("host-a", new ManualTimeProvider(Frozen), () => 7);

        var name = namer.Next("snappy");

        Assert.That(name, Does.Match("^part-20240501T101112123Z-host-a-000007-[0-9a-f]{8}\\.snappy\\.parquet$"));
    }

    [Test]
    public void TryParse_NameFromNext_GivesBackInstanceTimeAndSequence()
    {
        var namer = new LakeFileNamer("ip-10-0-0-1", new ManualTimeProvider(Frozen), () => 123456789);

        var parsed = LakeFileNamer.TryParse(namer.Next("zstd"), out var instance, out var createdAt, out var sequence);

        Assert.That(parsed, Is.True);
        Assert.That(instance, Is.EqualTo("ip-10-0-0-1"));
        Assert.That(createdAt, Is.EqualTo(Frozen));
        Assert.That(sequence, Is.EqualTo(123456789));
    }

    [TestCase("data.parquet")]
    [TestCase("part-.parquet")]
    [TestCase("part-2024-host-1-ab.snappy.parquet")]
    [TestCase("part-20240501T101112123Z-host-x-ab.snappy.parquet")]
    [TestCase("part-20240501T101112123Z-host-1-ab.snappy.txt")]
    public void TryParse_ForeignName_False(string name)
    {
        Assert.That(LakeFileNamer.TryParse(name, out _, out _, out _), Is.False);
    }

    [Test]
    public void Next_TwoInstancesAndRestartsAtTheSameMillisecond_AllNamesUnique()
    {
        // Worst case: a frozen clock, and each "restart" begins its sequence at 1 again with the same instance id.
        var clock = new ManualTimeProvider(Frozen);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var total = 0;
        foreach (var instance in new[] { "writer-a", "writer-b" })
        {
            for (var restart = 0; restart < 20; restart++)
            {
                long sequence = 0;
                var namer = new LakeFileNamer(instance, clock, () => ++sequence);
                for (var i = 0; i < 100; i++)
                {
                    names.Add(namer.Next("snappy"));
                    total++;
                }
            }
        }

        Assert.That(names, Has.Count.EqualTo(total));
    }

    [Test]
    public async Task Next_ConcurrentCallersInOneProcess_UniqueAndSequencesDistinct()
    {
        var namer = new LakeFileNamer("writer-a", new ManualTimeProvider(Frozen));
        var other = new LakeFileNamer("writer-a", new ManualTimeProvider(Frozen));

        var batches = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Task.Run(() =>
            Enumerable.Range(0, 500).Select(_ => (i % 2 == 0 ? namer : other).Next("snappy")).ToArray())));
        var all = batches.SelectMany(b => b).ToArray();
        var sequences = all.Select(n => LakeFileNamer.TryParse(n, out _, out _, out var s) ? s : -1).ToArray();

        Assert.That(all.Distinct(StringComparer.Ordinal).Count(), Is.EqualTo(all.Length));
        Assert.That(sequences.Distinct().Count(), Is.EqualTo(all.Length), "the sequence is process-wide, so two sinks sharing an id never collide");
    }

    [Test]
    public void Next_UnsafeInstanceId_SanitizedIntoTheName()
    {
        var namer = new LakeFileNamer("../host.a b", new ManualTimeProvider(Frozen));

        var name = namer.Next("gzip");

        Assert.That(name, Does.StartWith("part-20240501T101112123Z-___host_a_b-"));
        Assert.That(name, Does.Not.Contain("/").And.Not.Contain(".."));
    }

    [TestCase("")]
    [TestCase("Snappy")]
    [TestCase("snappy.parquet")]
    [TestCase("../x")]
    public void Next_InvalidCodec_ThrowsArgumentException(string codec)
    {
        var namer = new LakeFileNamer("a");

        Assert.Throws<ArgumentException>(() => namer.Next(codec));
    }

    [Test]
    public void Next_WithMaxFileAge_DeclaresItAndStillParses()
    {
        var namer = new LakeFileNamer("host-a", TimeSpan.FromMinutes(10), new ManualTimeProvider(Frozen));

        var name = namer.Next("snappy");

        Assert.That(name, Does.Match("^part-20240501T101112123Z-host-a-[0-9]{6,}-[0-9a-f]{8}\\.a600\\.snappy\\.parquet$"));
        Assert.That(LakeFileNamer.TryParse(name, out var instance, out var createdAt, out _), Is.True);
        Assert.That((instance, createdAt), Is.EqualTo(("host-a", Frozen)));
        Assert.That(LakeFileNamer.DeclaredAgeOf(name), Is.EqualTo(TimeSpan.FromMinutes(10)));
        Assert.That(namer.MaxFileAge, Is.EqualTo(TimeSpan.FromMinutes(10)));
    }

    [Test]
    public void DeclaredAgeOf_NameWithoutAge_None()
    {
        // The earlier format, which a namer without a max file age still makes.
        var name = new LakeFileNamer("host-a", new ManualTimeProvider(Frozen)).Next("snappy");

        Assert.That(LakeFileNamer.TryParse(name, out _, out _, out _), Is.True);
        Assert.That(LakeFileNamer.DeclaredAgeOf(name), Is.Null);
    }

    [TestCase("part-20240501T101112123Z-host-1-0badf00d.a1.parquet")] // "a1" is this name's codec, not an age
    [TestCase("part-20240501T101112123Z-host-1-0badf00d.a0600.snappy.parquet")]
    [TestCase("part-20240501T101112123Z-host-1-0badf00d.ax600.snappy.parquet")]
    [TestCase("part-20240501T101112123Z-host-1-0badf00d.a600..parquet")]
    [TestCase("part-20240501T101112123Z-host-1-0badf00d.a600.snappy.x.parquet")]
    [TestCase("part-20240501T101112123Z-host-1-0badf00d.parquet")]
    [TestCase("part-20240501T101112123Z-host-x-0badf00d.a600.snappy.parquet")] // no sequence: not a namer's name
    public void DeclaredAgeOf_MalformedOrForeign_None(string name)
    {
        Assert.That(LakeFileNamer.DeclaredAgeOf(name), Is.Null);
    }

    [TestCase(0)]
    [TestCase(-1)]
    public void Constructor_MaxFileAgeNotPositive_Refused(int seconds)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new LakeFileNamer("w", TimeSpan.FromSeconds(seconds)));
    }
}
