using System.Globalization;
using System.Text;
using Kawa.Dataflow.Cli.Events;
using Kawa.Dataflow.Cli.Handlers;

namespace Kawa.Dataflow.Tests.Cli.Handlers;

public class CombinedLogParserTests
{
    private static EventRecord Parse(string line)
    {
        var record = new EventRecord(Encoding.UTF8.GetBytes(line));
        CombinedLogParser.Parse(record.Raw, record);
        return record;
    }

    private static string? Str(EventRecord r, string field) => r[field].IsNull ? null : r[field].AsString();

    [Test]
    public void Parse_SharedTenThousandLines_AllParseAndAgreeWithIndependentSplit()
    {
        var lines = File.ReadAllLines(TestPaths.AccessLog10k);
        Assert.That(lines, Has.Length.EqualTo(10_000));

        var parsed = 0;
        var failures = new List<string>();
        var statusCounts = new Dictionary<long, int>();
        long byteSum = 0;
        var expectedStatus = new Dictionary<long, int>();
        long expectedBytes = 0;
        var mismatches = new List<string>();

        foreach (var line in lines)
        {
            // Independent reading: split on quotes, then on spaces.
            var q = line.Split('"');
            var tail = q[2].Trim().Split(' ');
            var status = long.Parse(tail[0], CultureInfo.InvariantCulture);
            var bytes = tail[1] == "-" ? 0 : long.Parse(tail[1], CultureInfo.InvariantCulture);
            expectedStatus[status] = expectedStatus.GetValueOrDefault(status) + 1;
            expectedBytes += bytes;
            var host = q[0].Split(' ')[0];
            var method = q[1].Split(' ')[0];

            EventRecord record;
            try
            {
                record = Parse(line);
            }
            catch (EventParseException ex)
            {
                failures.Add($"{ex.Message}: {line}");
                continue;
            }

            parsed++;
            var s = record["status"].AsLong();
            statusCounts[s] = statusCounts.GetValueOrDefault(s) + 1;
            byteSum += record["bytes"].AsLong();
            if (Str(record, "host") != host || Str(record, "method") != method || s != status || record["bytes"].AsLong() != bytes)
            {
                mismatches.Add(line);
            }
        }

        Assert.That(failures, Is.Empty);
        Assert.That(parsed, Is.EqualTo(10_000));
        Assert.That(mismatches, Is.Empty);
        Assert.That(statusCounts, Is.EquivalentTo(expectedStatus));
        Assert.That(byteSum, Is.EqualTo(expectedBytes));
        Assert.That(statusCounts[200], Is.EqualTo(9126));
    }

    [Test]
    public void Parse_FirstSharedLine_GivesEveryField()
    {
        var record = Parse(File.ReadLines(TestPaths.AccessLog10k).First());

        Assert.That(record.Names, Is.EqualTo(CombinedLogFields.All));
        Assert.That(Str(record, "host"), Is.EqualTo("83.149.9.216"));
        Assert.That(record["ident"].IsNull && record["user"].IsNull, Is.True);
        Assert.That(record["ts"].AsTimestamp(), Is.EqualTo(new DateTimeOffset(2015, 5, 17, 10, 5, 3, TimeSpan.Zero)));
        Assert.That(Str(record, "method"), Is.EqualTo("GET"));
        Assert.That(Str(record, "path"), Is.EqualTo("/presentations/logstash-monitorama-2013/images/kibana-search.png"));
        Assert.That(Str(record, "protocol"), Is.EqualTo("HTTP/1.1"));
        Assert.That(record["status"].AsLong(), Is.EqualTo(200));
        Assert.That(record["bytes"].AsLong(), Is.EqualTo(203023));
        Assert.That(Str(record, "referrer"), Is.EqualTo("http://semicomplete.com/presentations/logstash-monitorama-2013/"));
        Assert.That(Str(record, "agent"), Does.StartWith("Mozilla/5.0 (Macintosh;").And.EndWith("Safari/537.36"));
    }

    [Test]
    public void Parse_TruncatedUserAgentInSharedLog_TakesRestOfLine()
    {
        // Line 8,899 of the shared log was cut short: its user agent has no closing quote.
        var line = File.ReadLines(TestPaths.AccessLog10k).Skip(8898).First();

        var record = Parse(line);

        Assert.That(Str(record, "agent"), Is.EqualTo("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html"));
    }

    [Test]
    public void Parse_OffsetTime_IsStoredInUtc()
    {
        var record = Parse("1.2.3.4 - - [17/May/2015:12:05:03 +0200] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"");

        var ts = record["ts"].AsTimestamp();
        Assert.That(ts, Is.EqualTo(new DateTimeOffset(2015, 5, 17, 10, 5, 3, TimeSpan.Zero)));
        Assert.That(ts.Offset, Is.EqualTo(TimeSpan.Zero));
        Assert.That(Parse("1.2.3.4 - - [31/Dec/2015:23:30:00 -0130] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"")["ts"].AsTimestamp(),
            Is.EqualTo(new DateTimeOffset(2016, 1, 1, 1, 0, 0, TimeSpan.Zero)));
    }

    [Test]
    public void Parse_DashSizeAndDashes_GiveZeroAndNulls()
    {
        var record = Parse("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET /robots.txt HTTP/1.1\" 304 - \"-\" \"-\"");

        Assert.That(record["bytes"].AsLong(), Is.EqualTo(0));
        Assert.That(record["referrer"].IsNull, Is.True);
        Assert.That(record["agent"].IsNull, Is.True);
    }

    [Test]
    public void Parse_EscapedQuotesInUserAgent_AreUnescaped()
    {
        var record = Parse("1.2.3.4 - frank [17/May/2015:10:05:03 +0000] \"GET /a HTTP/1.1\" 200 5 \"http://r/?q=\\\"x\\\"\" \"Agent \\\"quoted\\\" \\\\ end\"");

        Assert.That(Str(record, "user"), Is.EqualTo("frank"));
        Assert.That(Str(record, "referrer"), Is.EqualTo("http://r/?q=\"x\""));
        Assert.That(Str(record, "agent"), Is.EqualTo("Agent \"quoted\" \\ end"));
    }

    [Test]
    public void Parse_UnescapedQuotesInUserAgentAndRequest_StillSplitRight()
    {
        var record = Parse("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET /say\"hi\" HTTP/1.1\" 200 5 \"-\" \"Evil \"quoted\" agent\"");

        Assert.That(Str(record, "path"), Is.EqualTo("/say\"hi\""));
        Assert.That(Str(record, "agent"), Is.EqualTo("Evil \"quoted\" agent"));
        Assert.That(record["status"].AsLong(), Is.EqualTo(200));
    }

    [TestCase("\"-\" 408 -", null, null, null)]
    [TestCase("\"GET /old\" 200 7", "GET", "/old", null)]
    [TestCase("\"\\x16\\x03\\x01\" 400 226", null, "\\x16\\x03\\x01", null)]
    [TestCase("\"GET /a b c HTTP/1.0\" 200 7", "GET", "/a b c", "HTTP/1.0")]
    [TestCase("\"\" 400 0", null, null, null)]
    public void Parse_OddRequestLines_AreSplitWithoutFailing(string requestAndRest, string? method, string? path, string? protocol)
    {
        var record = Parse($"1.2.3.4 - - [17/May/2015:10:05:03 +0000] {requestAndRest} \"-\" \"curl\"");

        Assert.That(Str(record, "method"), Is.EqualTo(method));
        Assert.That(Str(record, "path"), Is.EqualTo(path));
        Assert.That(Str(record, "protocol"), Is.EqualTo(protocol));
        Assert.That(Str(record, "agent"), Is.EqualTo("curl"));
    }

    [Test]
    public void Parse_CommonLogFormatAndCrLf_HasNullReferrerAndAgent()
    {
        var record = Parse("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 12\r\n");

        Assert.That(record["bytes"].AsLong(), Is.EqualTo(12));
        Assert.That(record["referrer"].IsNull && record["agent"].IsNull, Is.True);
    }

    [TestCase("", "the line ends before the host")]
    [TestCase("1.2.3.4 - - 17/May/2015:10:05:03 +0000 \"GET / HTTP/1.1\" 200 1", "missing the time")]
    [TestCase("1.2.3.4 - - [17/Mai/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "the time is not dd/MMM/yyyy:HH:mm:ss +hhmm: '17/Mai/2015:10:05:03 +0000'")]
    [TestCase("1.2.3.4 - - [31/Feb/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"", "the time is out of range")]
    [TestCase("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" OK 1 \"-\" \"-\"", "the request has no closing quote followed by a status")]
    [TestCase("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 2x0 1 \"-\" \"-\"", "the status is not a number: '2x0'")]
    [TestCase("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 many \"-\" \"-\"", "the size is neither a number nor '-': 'many'")]
    [TestCase("1.2.3.4 - - [17/May/2015:10:05:03 +0000] \"GET / HTTP/1.1\" 200 1 - -", "expected the quoted referrer after the size")]
    [TestCase("{\"not\":\"a log line\"}", "missing the time")]
    [TestCase("host-only", "the line ends after the host")]
    public void Parse_MalformedLine_ThrowsWithReasonAndKeepsRawAndRecord(string line, string reason)
    {
        var raw = Encoding.UTF8.GetBytes(line);
        var record = new EventRecord(raw).Set("before", 1L);

        var ex = Assert.Throws<EventParseException>(() => CombinedLogParser.Parse(record.Raw, record));

        Assert.That(ex!.Format, Is.EqualTo("combined"));
        Assert.That(ex.Reason, Does.StartWith(reason));
        Assert.That(ex.Raw.ToArray(), Is.EqualTo(raw));
        Assert.That(record.Names, Is.EqualTo(new[] { "before" }), "a failed parse leaves the record unchanged");
    }
}

public class SampleAccessLogTests
{
    [Test]
    public void SampleAccessLog_Has500LinesThatAllParse()
    {
        var lines = File.ReadAllLines(Path.Combine(TestPaths.RepoRoot, "samples", "access.log"));
        var statuses = new HashSet<long>();
        var hours = new HashSet<string>();

        foreach (var line in lines)
        {
            var record = new EventRecord(Encoding.UTF8.GetBytes(line));
            CombinedLogParser.Parse(record.Raw, record);
            statuses.Add(record["status"].AsLong());
            hours.Add(record["ts"].ToString("yyyy-MM-dd/HH"));
        }

        Assert.That(lines, Has.Length.EqualTo(500));
        Assert.That(statuses, Is.SupersetOf(new long[] { 200, 304, 404, 408, 500 }));
        Assert.That(hours.Count, Is.GreaterThan(24), "spread over many hourly partitions");
    }
}
