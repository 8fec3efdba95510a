using Kawa.Dataflow.Parquet.Lake;

namespace Kawa.Dataflow.Tests.Parquet.Lake;

/// <summary>The temporary name format, and the max-file-age token it shares with <see cref="LakeFileNamer"/>.</summary>
public sealed class LakeTempNamesTests
{
    [Test]
    public void Create_ThenParse_GivesBackInstanceAndDeclaredAge()
    {
        var name = LakeTempNames.Create("part-1.snappy.parquet", "ip-10-0-0-1", TimeSpan.FromHours(2));

        Assert.That(name, Does.Match(@"^\.part-1\.snappy\.parquet\.tmp-ip-10-0-0-1-[0-9a-f]{8}\.a7200$"));
        Assert.That(LakeTempNames.IsTemporary(name), Is.True);
        Assert.That(LakeTempNames.InstanceOf(name), Is.EqualTo("ip-10-0-0-1"));
        Assert.That(LakeTempNames.DeclaredAgeOf(name), Is.EqualTo(TimeSpan.FromHours(2)));
        Assert.That(name, Does.Not.EndWith(".parquet"), "readers would take it for data");
    }

    [Test]
    public void Create_FractionalSeconds_DeclaresTheAgeRoundedUpSoNeverBelowTheWritersOwn()
    {
        var name = LakeTempNames.Create("p.parquet", "w", TimeSpan.FromMilliseconds(90_001));

        Assert.That(LakeTempNames.DeclaredAgeOf(name), Is.EqualTo(TimeSpan.FromSeconds(91)));
    }

    [Test]
    public void Create_AgeBeyondTheTokensRange_DeclaresTheLargestAndParsesBack()
    {
        var name = LakeTempNames.Create("p.parquet", "w", TimeSpan.MaxValue);

        Assert.That(LakeTempNames.DeclaredAgeOf(name), Is.EqualTo(TimeSpan.FromSeconds(LakeDeclaredAge.MaxSeconds)));
    }

    [TestCase(".part-1.snappy.parquet.tmp-writer-b-0badf00d", "writer-b")]
    [TestCase(".p.parquet.tmp-host-1a2b3c4d-12345678", "host-1a2b3c4d")]
    public void DeclaredAgeOf_NameOfTheEarlierFormat_NoneButInstanceStillRead(string name, string instance)
    {
        Assert.That(LakeTempNames.IsTemporary(name), Is.True);
        Assert.That(LakeTempNames.InstanceOf(name), Is.EqualTo(instance));
        Assert.That(LakeTempNames.DeclaredAgeOf(name), Is.Null);
    }

    [TestCase(".p.parquet.tmp-w-0badf00d.a")] // no digits
    [TestCase(".p.parquet.tmp-w-0badf00d.a0")] // zero
    [TestCase(".p.parquet.tmp-w-0badf00d.a0600")] // leading zero
    [TestCase(".p.parquet.tmp-w-0badf00d.b600")] // another tag
    [TestCase(".p.parquet.tmp-w-0badf00d.A600")] // tags are case-sensitive
    [TestCase(".p.parquet.tmp-w-0badf00d.a60x")] // not a number
    [TestCase(".p.parquet.tmp-w-0badf00d.a+600")] // a sign
    [TestCase(".p.parquet.tmp-w-0badf00d.a 600")] // a space
    [TestCase(".p.parquet.tmp-w-0badf00d.a600.")] // trailing dot
    [TestCase(".p.parquet.tmp-w-0badf00d.a600.a600")] // two tokens
    [TestCase(".p.parquet.tmp-w-0badf00d.a1000000000000")] // 13 digits
    [TestCase(".p.parquet.tmp-w-0badf00d.a999999999999")] // beyond TimeSpan
    [TestCase(".p.parquet.tmp-w-.a600")] // no random
    [TestCase("p.parquet.tmp-w-0badf00d.a600")] // not hidden: not a temporary name
    public void DeclaredAgeOf_MalformedToken_NoDeclaredAge(string name)
    {
        Assert.That(LakeTempNames.DeclaredAgeOf(name), Is.Null);
    }

    [Test]
    public void DeclaredAgeOf_LargestToken_Parsed()
    {
        Assert.That(LakeTempNames.DeclaredAgeOf(".p.parquet.tmp-w-0badf00d.a" + LakeDeclaredAge.MaxSeconds), Is.EqualTo(TimeSpan.FromSeconds(LakeDeclaredAge.MaxSeconds)));
    }
}
