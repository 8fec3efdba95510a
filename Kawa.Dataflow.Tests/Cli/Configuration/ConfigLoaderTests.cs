using System.Text;
using Kawa.Dataflow.Cli.Configuration;

namespace Kawa.Dataflow.Tests.Cli.Configuration;

public class ConfigLoaderTests
{
    private string _dir = null!;
    private string _log = null!;

    [SetUp]
    public void SetUp()
    {
        _dir = Directory.CreateTempSubdirectory("kawa-config-").FullName;
        _log = Path.Combine(_dir, "access.log");
        File.WriteAllText(_log, "");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, recursive: true);

    private string Valid => $$"""
        // comments and trailing commas are allowed
        {
          "pipeline": {
            "name": "access-logs",
            "source": { "type": "file", "path": {{Json(_log)}}, "mode": "read", },
            "handlers": [
              { "type": "parse", "format": "combined", "parallelism": 2, "errorPolicy": { "type": "deadLetter" } },
              { "type": "filter", "match": "any", "conditions": [ { "field": "status", "op": ">=", "value": "500" } ] },
              { "type": "fields", "rename": { "agent": "user_agent" }, "drop": [ "ident" ], "add": { "env": "prod" }, "ingestTime": "ingested_at" },
            ],
            "destination": {
              "type": "parquet", "path": "./lake", "partitionBy": "dt={ts:yyyy-MM-dd}/hour={ts:HH}",
              "columns": [ { "name": "ts", "type": "timestamp", "nullable": false }, { "name": "status", "type": "long" }, { "name": "ua", "source": "user_agent" } ],
              "extraColumn": "_extra", "rollAge": "00:00:20", "codec": "snappy",
            },
            "deadLetter": { "type": "stdout", "format": "raw" },
            "limits": { "maxInFlightMessages": 5000, "drainTimeout": "00:00:10" },
          },
          "metrics": { "port": 9100 },
        }
        """;

    private static string Json(string s) => System.Text.Json.JsonSerializer.Serialize(s);

    private static ConfigLoadResult Load(string json, params string[] overrides)
        => ConfigLoader.Load(Encoding.UTF8.GetBytes(json), "kawa.json", overrides, useEnvironment: false);

    private static string[] Lines(ConfigLoadResult result) => result.Errors.Select(e => e.ToString()).ToArray();

    [Test]
    public void Load_ValidJsonWithCommentsAndTrailingCommas_BindsEveryLevel()
    {
        var result = Load(Valid);

        Assert.That(Lines(result), Is.Empty);
        Assert.That(result.IsValid, Is.True);
        var p = result.Options!.Pipeline!;
        Assert.That(p.Name, Is.EqualTo("access-logs"));
        Assert.That(p.Source, Is.TypeOf<FileSourceOptions>());
        Assert.That(((FileSourceOptions)p.Source!).Path, Is.EqualTo(_log));
        Assert.That(p.Handlers, Has.Count.EqualTo(3));
        var parse = (ParseHandlerOptions)p.Handlers[0]!;
        Assert.That(parse.Format, Is.EqualTo("combined"));
        Assert.That(parse.Parallelism, Is.EqualTo(2));
        Assert.That(parse.Capacity, Is.EqualTo(1000), "default");
        Assert.That(parse.ErrorPolicy.Type, Is.EqualTo("deadLetter"));
        var filter = (FilterHandlerOptions)p.Handlers[1]!;
        Assert.That(filter.Conditions[0]!.Op, Is.EqualTo(">="));
        var fields = (FieldsHandlerOptions)p.Handlers[2]!;
        Assert.That(fields.Rename["agent"], Is.EqualTo("user_agent"));
        Assert.That(fields.Drop, Is.EqualTo(new[] { "ident" }));
        var parquet = (ParquetDestinationOptions)p.Destination!;
        Assert.That(parquet.Columns[0]!.Nullable, Is.False);
        Assert.That(parquet.Columns[2]!.Source, Is.EqualTo("user_agent"));
        Assert.That(parquet.RollAge, Is.EqualTo(TimeSpan.FromSeconds(20)));
        Assert.That(parquet.RollRows, Is.EqualTo(25_000), "default");
        Assert.That(p.DeadLetter, Is.TypeOf<StdoutDestinationOptions>());
        Assert.That(p.Limits.DrainTimeout, Is.EqualTo(TimeSpan.FromSeconds(10)));
        Assert.That(p.Limits.MaxInFlightBytes, Is.EqualTo(64L * 1024 * 1024), "default");
        Assert.That(result.Options.Metrics.Port, Is.EqualTo(9100));
    }

    [Test]
    public void Load_KeysInOtherCase_BindCaseInsensitively()
    {
        var result = Load(Valid.Replace("\"maxInFlightMessages\"", "\"MAXINFLIGHTMESSAGES\"", StringComparison.Ordinal));

        Assert.That(Lines(result), Is.Empty);
        Assert.That(result.Options!.Pipeline!.Limits.MaxInFlightMessages, Is.EqualTo(5000));
    }

    [Test]
    public void Load_EnvironmentVariables_OverrideFileAndCommandLineOverridesBoth()
    {
        var file = Path.Combine(_dir, "kawa.json");
        File.WriteAllText(file, Valid);
        Environment.SetEnvironmentVariable("KAWA_PIPELINE__LIMITS__DRAINTIMEOUT", "00:00:07");
        Environment.SetEnvironmentVariable("KAWA_PIPELINE__HANDLERS__0__PARALLELISM", "6");
        Environment.SetEnvironmentVariable("KAWA_METRICS__PORT", "9200");
        try
        {
            var result = ConfigLoader.Load(file, ["pipeline.handlers[0].parallelism=8", "pipeline:name=from-args"]);

            Assert.That(Lines(result), Is.Empty);
            var p = result.Options!.Pipeline!;
            Assert.That(p.Limits.DrainTimeout, Is.EqualTo(TimeSpan.FromSeconds(7)), "environment over file");
            Assert.That(result.Options.Metrics.Port, Is.EqualTo(9200), "environment over file");
            Assert.That(p.Handlers[0]!.Parallelism, Is.EqualTo(8), "command line over environment");
            Assert.That(p.Name, Is.EqualTo("from-args"), "colon keys work too");
            Assert.That(p.Handlers, Has.Count.EqualTo(3), "an indexed override merges into the array");
        }
        finally
        {
            Environment.SetEnvironmentVariable("KAWA_PIPELINE__LIMITS__DRAINTIMEOUT", null);
            Environment.SetEnvironmentVariable("KAWA_PIPELINE__HANDLERS__0__PARALLELISM", null);
            Environment.SetEnvironmentVariable("KAWA_METRICS__PORT", null);
        }
    }

    [Test]
    public void Load_KawasOwnLogLevelAndFaultPointVariables_AreNotConfigKeys()
    {
        var file = Path.Combine(_dir, "kawa.json");
        File.WriteAllText(file, Valid);
        Environment.SetEnvironmentVariable("KAWA_LOG_LEVEL", "Debug");
        Environment.SetEnvironmentVariable("KAWA_FAULT_POINT", "mid-batch");
        try
        {
            var result = ConfigLoader.Load(file);

            Assert.That(Lines(result), Is.Empty, "documented kawa variables, not unknown config keys");
            Assert.That(result.IsValid, Is.True);
        }
        finally
        {
            Environment.SetEnvironmentVariable("KAWA_LOG_LEVEL", null);
            Environment.SetEnvironmentVariable("KAWA_FAULT_POINT", null);
        }
    }

    [Test]
    public void Load_EnvironmentVariableWithUnknownKey_IsReportedWithItsPath()
    {
        var file = Path.Combine(_dir, "kawa.json");
        File.WriteAllText(file, Valid);
        Environment.SetEnvironmentVariable("KAWA_PIPELINE__LIMTS__DRAINTIMEOUT", "00:00:07");
        try
        {
            var result = ConfigLoader.Load(file);

            Assert.That(Lines(result), Does.Contain("pipeline.LIMTS: unknown key (did you mean 'limits'?)"));
        }
        finally
        {
            Environment.SetEnvironmentVariable("KAWA_PIPELINE__LIMTS__DRAINTIMEOUT", null);
        }
    }

    [Test]
    public void Load_HandlerOrdered_DefaultsToTrueAndBindsFromFileAndOverrides()
    {
        var result = Load(Valid.Replace("\"parallelism\": 2,", "\"parallelism\": 2, \"ordered\": false,", StringComparison.Ordinal), "pipeline.handlers[2].ordered=true");

        Assert.That(Lines(result), Is.Empty);
        var handlers = result.Options!.Pipeline!.Handlers;
        Assert.Multiple(() =>
        {
            Assert.That(handlers[0]!.Ordered, Is.False, "from the file");
            Assert.That(handlers[1]!.Ordered, Is.True, "default");
            Assert.That(handlers[2]!.Ordered, Is.True, "from --set");
        });
        Assert.That(Load(Valid, "pipeline.handlers[1].ordered=false").Options!.Pipeline!.Handlers[1]!.Ordered, Is.False, "--set false");
    }

    [Test]
    public void Load_HandlerOrderedWrongTypeOrMisspelt_ReportsPathAndExpectation()
    {
        var json = Valid
            .Replace("\"parallelism\": 2,", "\"parallelism\": 2, \"ordered\": \"no\",", StringComparison.Ordinal)
            .Replace("\"match\": \"any\",", "\"match\": \"any\", \"orderd\": false,", StringComparison.Ordinal)
            .Replace("\"ingestTime\": \"ingested_at\"", "\"ingestTime\": \"ingested_at\", \"ordered\": { \"x\": 1 }", StringComparison.Ordinal);

        Assert.That(Lines(Load(json)), Is.EquivalentTo(new[]
        {
            "pipeline.handlers[0].ordered: expected true or false, got 'no'",
            "pipeline.handlers[1].orderd: unknown key (did you mean 'ordered'?)",
            "pipeline.handlers[2].ordered: expected true or false, got an object or array",
        }));
    }

    [Test]
    public void Load_DurationWithUnit_Parses()
    {
        var result = Load(Valid, "pipeline.limits.drainTimeout=1500ms", "pipeline.destination.rollAge=5m");

        Assert.That(Lines(result), Is.Empty);
        Assert.That(result.Options!.Pipeline!.Limits.DrainTimeout, Is.EqualTo(TimeSpan.FromMilliseconds(1500)));
        Assert.That(((ParquetDestinationOptions)result.Options.Pipeline.Destination!).RollAge, Is.EqualTo(TimeSpan.FromMinutes(5)));
    }

    [Test]
    public void Load_RollAgeAboveAWeek_RefusedWithTheLimit()
    {
        Assert.That(Lines(Load(Valid, "pipeline.destination.rollAge=7.00:00:00")), Is.Empty);
        Assert.That(Lines(Load(Valid, "pipeline.destination.rollAge=7.00:00:01")), Has.Some.Contain("pipeline.destination.rollAge: must be at most 7.00:00:00 (the lake's cleanup age is derived from it); got 7.00:00:01"));
    }

    [Test]
    public void Load_ErrorsOfEveryKind_ReportsAllAtOnceWithPaths()
    {
        var json = $$"""
            {
              "pipeline": {
                "source": { "type": "file", "path": {{Json(_log)}}, "mode": "follow" },
                "handlers": [
                  { "type": "parse", "format": "combined", "parallelism": "two" },
                  { "type": "filter", "paralelism": 2, "conditions": [ { "field": "status", "op": "=~", "value": "5" } ] },
                  { "type": "fields", "capacity": 0, "add": { "env": "prod" } }
                ],
                "destination": { "type": "parquet", "path": "./lake", "partitionBy": "dt={tss:yyyy-MM-dd}", "s3": { "region": "eu-west-1", "bukcet": "x" } },
                "limits": { "drainTimeout": "soon", "maxInFlightMessages": -1 }
              },
              "metrics": { "port": 70000 }
            }
            """;

        var lines = Lines(Load(json));

        Assert.That(lines, Is.EquivalentTo(new[]
        {
            "pipeline.handlers[0].parallelism: expected an integer, got 'two'",
            "pipeline.handlers[1].paralelism: unknown key (did you mean 'parallelism'?)",
            "pipeline.destination.s3.bukcet: unknown key",
            "pipeline.limits.drainTimeout: expected a duration (hh:mm:ss, or a number with ms, s, m, h or d), got 'soon'",
            "metrics.port: must be between 0 and 65535 (0 disables metrics), got 70000",
            "pipeline.name: missing required value",
            "pipeline.source.offsetFile: missing required value (mode follow saves its position there, or a restart would re-read or skip lines)",
            "pipeline.handlers[1].conditions[0].op: unknown value '=~' (expected one of: ==, !=, <, <=, >, >=, contains, startsWith, exists)",
            "pipeline.handlers[2].capacity: must be between 1 and 1000000, got 0",
            "pipeline.destination.s3: only applies to an s3:// path",
            "pipeline.destination.partitionBy: unknown field 'tss' (did you mean 'ts'?)",
            "pipeline.limits.maxInFlightMessages: must be between 1 and 10000000, got -1",
        }));
    }

    [Test]
    public void Load_UnknownSourceType_ListsTheKnownTypes()
    {
        var lines = Lines(Load(Valid.Replace("\"type\": \"file\"", "\"type\": \"natz\"", StringComparison.Ordinal)));

        Assert.That(lines, Is.EqualTo(new[] { "pipeline.source.type: unknown source type 'natz' (expected one of: nats-jetstream, nats, file, stdin)" }));
    }

    [Test]
    public void Load_UnknownHandlerTypeAndMissingDestination_ReportsBothWithoutNoise()
    {
        var json = """{ "pipeline": { "name": "x", "source": { "type": "stdin" }, "handlers": [ { "type": "prase", "format": "json" } ] } }""";

        Assert.That(Lines(Load(json)), Is.EquivalentTo(new[]
        {
            "pipeline.handlers[0].type: unknown handler type 'prase' (expected one of: parse, filter, fields)",
            "pipeline.destination: missing required value",
        }));
    }

    [Test]
    public void Load_JetStreamToParquet_CrossFieldRulesReported()
    {
        var json = """
            { "pipeline": { "name": "js",
                "source": { "type": "nats-jetstream", "servers": [ "nats://127.0.0.1:4222" ], "stream": "LOGS", "ackWait": "00:00:30",
                            "maxAckPending": 100, "prefetch": 500, "deliverPolicy": "byStartSequence" },
                "destination": { "type": "parquet", "path": "s3://bucket/prefix", "rollAge": "00:01:00" } } }
            """;

        Assert.That(Lines(Load(json)), Is.EquivalentTo(new[]
        {
            "pipeline.source.durable: missing required value (a durable consumer is what lets a restart resume where it stopped)",
            "pipeline.source.optStartSeq: missing required value (deliverPolicy byStartSequence needs it)",
            "pipeline.source.prefetch: must not exceed maxAckPending (100): the server would never deliver the rest, got 500",
            "pipeline.destination.s3: an s3:// path needs s3.region or s3.endpoint",
            "pipeline.destination.rollAge: must be below pipeline.source.ackWait (00:00:30) by more than the sink's batch age (00:00:01): messages are acked only when the file is committed, so the server would redeliver them first; got 00:01:00",
        }));
    }

    [Test]
    public void Load_JetStreamToParquetWithEveryDefault_IsValidWithoutWarnings()
    {
        // The defaults must fit together: the roll age below the ack wait, the in-flight window plus prefetch within
        // maxAckPending, and a file's rows within the in-flight window (else files are cut when it fills: a warning).
        var json = """
            { "pipeline": { "name": "js",
                "source": { "type": "nats-jetstream", "servers": [ "nats://127.0.0.1:4222" ], "stream": "LOGS", "durable": "d" },
                "destination": { "type": "parquet", "path": "./lake" } } }
            """;

        var result = Load(json);

        Assert.That(Lines(result), Is.Empty);
        Assert.That(result.IsValid, Is.True);
        Assert.That(result.Warnings.Select(w => w.ToString()), Is.Empty);
        var p = result.Options!.Pipeline!;
        var parquet = (ParquetDestinationOptions)p.Destination!;
        Assert.That(parquet.RollRows * 2, Is.LessThanOrEqualTo(p.Limits.MaxInFlightMessages), "two default files fit the default window, so one commits while the next fills");
    }

    [Test]
    public void Load_JetStreamWindowPlusPrefetchAboveMaxAckPending_IsAnErrorNamingTheKeys()
    {
        // The library's start-up rule (NatsJetStreamSource.ValidateAgainst): maxInFlightMessages + prefetch <= maxAckPending.
        var result = Load(JetStreamWindowConfig(maxInFlightMessages: 19745));

        Assert.That(result.IsValid, Is.False);
        Assert.That(Lines(result), Is.EqualTo(new[]
        {
            "pipeline.source.maxAckPending: must be at least pipeline.limits.maxInFlightMessages + pipeline.source.prefetch (19745 + 256 = 20001), the most messages this process holds delivered and unacked, got 20000: raise pipeline.source.maxAckPending to 20001 or more (times the processes sharing the durable), or lower pipeline.limits.maxInFlightMessages or pipeline.source.prefetch",
        }));
    }

    [Test]
    public void Load_JetStreamWindowPlusPrefetchEqualToMaxAckPending_IsValid()
    {
        var result = Load(JetStreamWindowConfig(maxInFlightMessages: 19744));

        Assert.That(Lines(result), Is.Empty);
        Assert.That(result.IsValid, Is.True);
    }

    /// <summary>A JetStream source with maxAckPending 20000 and prefetch 256, and the given in-flight window.</summary>
    private static string JetStreamWindowConfig(int maxInFlightMessages) => $$"""
        { "pipeline": { "name": "js",
            "source": { "type": "nats-jetstream", "stream": "LOGS", "durable": "d", "maxAckPending": 20000, "prefetch": 256 },
            "destination": { "type": "stdout" },
            "limits": { "maxInFlightMessages": {{maxInFlightMessages}} } } }
        """;

    [Test]
    public void Load_JetStreamDefaultWindowAgainstSmallMaxAckPending_IsAnError()
    {
        // Only maxAckPending set: the default window (limits.maxInFlightMessages) is what must fit.
        var result = Load("""
            { "pipeline": { "name": "js",
                "source": { "type": "nats-jetstream", "stream": "LOGS", "durable": "d", "maxAckPending": 1000 },
                "destination": { "type": "stdout" } } }
            """);

        Assert.That(Lines(result), Has.Exactly(1).StartsWith("pipeline.source.maxAckPending: must be at least pipeline.limits.maxInFlightMessages + pipeline.source.prefetch"));
    }

    [Test]
    public void Load_ParquetDestinationWithoutRowGroupRows_UsesTheParquetWritersRowGroupSize()
    {
        var result = Load("""{ "pipeline": { "name": "p", "source": { "type": "stdin" }, "destination": { "type": "parquet", "path": "./lake" } } }""");

        var parquet = (ParquetDestinationOptions)result.Options!.Pipeline!.Destination!;
        Assert.That(parquet.RowGroupRows, Is.EqualTo(new Kawa.Dataflow.Parquet.Writing.ParquetWriterOptions().RowGroupMaxRows));
        Assert.That(parquet.RowGroupRows, Is.EqualTo(new Kawa.Dataflow.Parquet.Sink.ParquetDestinationOptions<object>().RowGroupMaxRows));
    }

    [Test]
    public void Load_DeadLetterPolicyWithoutDeadLetterDestination_IsReported()
    {
        var result = Load(Valid.Replace("\"deadLetter\": { \"type\": \"stdout\", \"format\": \"raw\" },", "", StringComparison.Ordinal));

        Assert.That(Lines(result), Is.EqualTo(new[] { "pipeline.handlers[0].errorPolicy.type: 'deadLetter' needs pipeline.deadLetter (a destination) to be configured, or the stage's own deadLetter" }));
    }

    [Test]
    public void Load_StageDeadLetterInsteadOfPipelines_IsValidAndCheckedLikeAnyDestination()
    {
        var own = Valid.Replace("\"deadLetter\": { \"type\": \"stdout\", \"format\": \"raw\" },", "", StringComparison.Ordinal)
            .Replace("\"errorPolicy\": { \"type\": \"deadLetter\" } }", "\"errorPolicy\": { \"type\": \"deadLetter\" }, \"deadLetter\": { \"type\": \"stdout\" } }", StringComparison.Ordinal);
        var broken = own.Replace("\"deadLetter\": { \"type\": \"stdout\" }", "\"deadLetter\": { \"type\": \"parquet\", \"pat\": \"./dead\" }", StringComparison.Ordinal);

        var ok = Load(own);
        var bad = Load(broken);

        Assert.That(ok.Errors, Is.Empty);
        Assert.That(ok.Options!.Pipeline!.Handlers[0]!.DeadLetter, Is.InstanceOf<StdoutDestinationOptions>());
        Assert.That(Lines(bad), Does.Contain("pipeline.handlers[0].deadLetter.pat: unknown key (did you mean 'path'?)")
            .And.Contain("pipeline.handlers[0].deadLetter.path: missing required value"));
    }

    [Test]
    public void Load_RegexHandler_ChecksPatternAndTypeHints()
    {
        var json = """
            { "pipeline": { "name": "re", "source": { "type": "stdin" },
                "handlers": [
                  { "type": "parse", "format": "regex", "pattern": "(?<level>\\w+) (?<ms>\\d+", "types": { "ms": "long" } },
                  { "type": "parse", "format": "regex", "pattern": "(?<level>\\w+) (?<ms>\\d+)", "types": { "mss": "long", "level": "text" } },
                  { "type": "parse", "format": "json", "pattern": "x" }
                ],
                "destination": { "type": "stdout" } } }
            """;

        var lines = Lines(Load(json));

        Assert.That(lines, Has.Length.EqualTo(4));
        Assert.That(lines[0], Does.StartWith("pipeline.handlers[0].pattern: invalid regular expression:"));
        Assert.That(lines[1..3], Is.EquivalentTo(new[]
        {
            "pipeline.handlers[1].types.mss: no group named 'mss' in the pattern (did you mean 'ms'?)",
            "pipeline.handlers[1].types.level: unknown value 'text' (expected one of: string, long, double, bool, timestamp)",
        }));
        Assert.That(lines[3], Is.EqualTo("pipeline.handlers[2].pattern: only applies to format regex, not json"));
    }

    [Test]
    public void Load_FilterOnFieldNoHandlerProduces_IsReported()
    {
        var result = Load(Valid.Replace("\"field\": \"status\"", "\"field\": \"statsu\"", StringComparison.Ordinal));

        Assert.That(Lines(result), Is.EqualTo(new[] { "pipeline.handlers[1].conditions[0].field: unknown field 'statsu' (no earlier handler produces it) (did you mean 'status'?)" }));
    }

    [Test]
    public void Load_AfterJsonParse_AnyFieldIsAccepted()
    {
        var json = """
            { "pipeline": { "name": "j", "source": { "type": "stdin" },
                "handlers": [ { "type": "parse", "format": "json" }, { "type": "filter", "conditions": [ { "field": "level", "op": "==", "value": "error" } ] } ],
                "destination": { "type": "parquet", "path": "out", "partitionBy": "dt={time:yyyy-MM-dd}" } } }
            """;

        Assert.That(Lines(Load(json)), Is.Empty);
    }

    [Test]
    public void Load_InvalidJson_ReportsLineAndColumn()
    {
        var json = "{\n  \"pipeline\": {\n    \"name\": \"x\"\n    \"source\": {}\n  }\n}";

        var lines = Lines(Load(json));

        Assert.That(lines, Has.Length.EqualTo(1));
        Assert.That(lines[0], Does.StartWith("kawa.json:4:5: invalid JSON:"));
    }

    [Test]
    public void Load_UnterminatedString_ReportsItsLine()
    {
        var lines = Lines(Load("{ \"pipeline\": {\n \"name\": \"x\n} }"));

        Assert.That(lines, Has.Length.EqualTo(1));
        Assert.That(lines[0], Does.StartWith("kawa.json:2:"));
    }

    [Test]
    public void Load_DuplicateKey_ReportsPath()
    {
        var lines = Lines(Load("""{ "pipeline": { "name": "a", "Name": "b" } }"""));

        Assert.That(lines, Is.EqualTo(new[] { "pipeline.Name: duplicate key (keys are case-insensitive)" }));
    }

    [Test]
    public void Load_MissingFile_ReportsIt()
    {
        var result = ConfigLoader.Load(Path.Combine(_dir, "nope.json"));

        Assert.That(result.IsValid, Is.False);
        Assert.That(Lines(result)[0], Does.EndWith("nope.json: cannot read the configuration file: file not found"));
    }

    [Test]
    public void Load_ArrayWhereObjectExpected_ReportsType()
    {
        var lines = Lines(Load(Valid.Replace("\"metrics\": { \"port\": 9100 }", "\"metrics\": [ 1 ]", StringComparison.Ordinal)));

        Assert.That(lines, Is.EqualTo(new[] { "metrics[0]: unknown key" }).Or.EqualTo(new[] { "metrics.0: unknown key" }));
    }

    [Test]
    public void Load_SecretsInErrors_AreMasked()
    {
        var json = """
            { "pipeline": { "name": "s",
                "source": { "type": "nats-jetstream", "servers": [ "http://alice:hunter2-pass@127.0.0.1:4222" ], "stream": "S", "durable": "d",
                            "auth": { "user": "alice", "password": "hunter2-pass", "token": "tok-SECRET-1", "nkey": "nkey-SECRET-2" } },
                "destination": { "type": "parquet", "path": "s3://b/p", "s3": { "region": "r", "secretKey": "aws-SECRET-3", "endpoint": "ftp://k:aws-SECRET-4@x" } } } }
            """;

        var result = Load(json, "pipeline.source.auth.creds=creds-SECRET-5", "pipeline.source.maxAckPending=x-SECRET-6", "pipeline.source.auth.password:deep=pw-SECRET-7");
        var text = string.Join("\n", Lines(result));

        Assert.That(result.Errors, Is.Not.Empty);
        foreach (var secret in new[] { "hunter2-pass", "tok-SECRET-1", "nkey-SECRET-2", "aws-SECRET-3", "aws-SECRET-4", "creds-SECRET-5", "pw-SECRET-7" })
        {
            Assert.That(text, Does.Not.Contain(secret));
        }

        Assert.That(text, Does.Contain("pipeline.source.servers[0]: expected a URL like nats://host:4222 (schemes: nats, tls, ws, wss), got 'http://alice:***@127.0.0.1:4222'"));
        Assert.That(text, Does.Contain("pipeline.source.auth: give one authentication method, got token and user/password and nkey and creds"));
        Assert.That(text, Does.Contain("pipeline.source.auth.accessKey").Or.Contain("pipeline.destination.s3: accessKey and secretKey go together"));
    }
}

public class ConfigLoaderOverrideTests
{
    [Test]
    public void Load_MalformedOverride_IsReportedWithoutEchoingIt()
    {
        var json = """{ "pipeline": { "name": "x", "source": { "type": "stdin" }, "destination": { "type": "stdout" } } }""";

        var result = ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(json), "k.json", ["pipeline.source.auth.password"], useEnvironment: false);

        Assert.That(result.Errors.Select(e => e.ToString()), Is.EqualTo(new[] { "--set: override 1 is not key=value (e.g. pipeline.limits.drainTimeout=00:00:10)" }));
    }

    [Test]
    public void Load_EmptyServersList_IsMissingButOmittedServersDefaultToLocalhost()
    {
        var json = """{ "pipeline": { "name": "x", "source": { "type": "nats", "subject": "a.>", "servers": [] }, "destination": { "type": "stdout" } } }""";
        var omitted = """{ "pipeline": { "name": "x", "source": { "type": "nats", "subject": "a.>" }, "destination": { "type": "stdout" } } }""";

        var empty = ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false);
        var defaulted = ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(omitted), "k.json", useEnvironment: false);

        Assert.That(empty.Errors.Select(e => e.ToString()), Is.EqualTo(new[] { "pipeline.source.servers: missing required value (at least one server URL)" }));
        Assert.That(((NatsSourceOptions)defaulted.Options!.Pipeline!.Source!).Servers, Is.EqualTo(new[] { "nats://127.0.0.1:4222" }));
    }

    [TestCase("a..b", "invalid subject 'a..b': empty token or whitespace")]
    [TestCase("a.b*", "invalid subject 'a.b*': '*' must be a whole token and '>' the last token")]
    [TestCase("a.>.b", "invalid subject 'a.>.b': '*' must be a whole token and '>' the last token")]
    public void Load_InvalidSubject_IsReported(string subject, string message)
    {
        var json = $$"""{ "pipeline": { "name": "x", "source": { "type": "nats", "subject": "{{subject}}" }, "destination": { "type": "stdout" } } }""";

        var result = ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false);

        Assert.That(result.Errors.Select(e => e.ToString()), Is.EqualTo(new[] { $"pipeline.source.subject: {message}" }));
    }
}

public class ConfigLoaderValueTests
{
    private static string[] Errors(string json) => ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false).Errors.Select(e => e.ToString()).ToArray();

    [Test]
    public void Load_NullAndEmptyForNumber_AreTypeErrors()
    {
        var errors = Errors("""{ "pipeline": { "name": "x", "source": { "type": "stdin" }, "destination": { "type": "stdout" }, "limits": { "maxInFlightMessages": null, "maxInFlightBytes": "" } } }""");

        Assert.That(errors, Is.EquivalentTo(new[]
        {
            "pipeline.limits.maxInFlightMessages: expected an integer, got null",
            "pipeline.limits.maxInFlightBytes: expected an integer, got an empty value",
        }));
    }

    [Test]
    public void Load_ScalarWhereObjectOrArrayExpected_AreTypeErrors()
    {
        var errors = Errors("""{ "pipeline": { "name": "x", "source": "stdin", "destination": { "type": "stdout" }, "limits": 5, "handlers": { "a": 1 } } }""");

        Assert.That(errors, Is.EquivalentTo(new[]
        {
            "pipeline.source: expected a source object with a 'type', got 'stdin'",
            "pipeline.limits: expected an object, got '5'",
            "pipeline.handlers: expected an array, got an object",
        }));
    }

    [Test]
    public void Load_ObjectWhereNumberExpected_IsTypeError()
    {
        var errors = Errors("""{ "pipeline": { "name": "x", "source": { "type": "stdin" }, "destination": { "type": "stdout" } }, "metrics": { "port": { "n": 1 } } }""");

        Assert.That(errors, Is.EqualTo(new[] { "metrics.port: expected an integer, got an object or array" }));
    }
}

public class ConfigLoaderWarningTests
{
    [Test]
    public void Load_QuestionableButValidSettings_GiveWarningsNotErrors()
    {
        var json = """
            { "pipeline": { "name": "w",
                "source": { "type": "nats-jetstream", "stream": "S", "durable": "d", "ackWait": "00:00:20", "maxAckPending": 1000 },
                "handlers": [ { "type": "parse", "format": "json", "errorPolicy": { "type": "retry" } } ],
                "destination": { "type": "parquet", "path": "out", "rollRows": 5000, "rollAge": "00:00:10" },
                "limits": { "maxInFlightMessages": 700, "drainTimeout": "00:00:25" } } }
            """;

        var result = ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false);

        Assert.That(result.IsValid, Is.True, string.Join("\n", result.Errors));
        Assert.That(result.Warnings.Select(w => w.Path), Is.EquivalentTo(new[]
        {
            "pipeline.handlers[0].errorPolicy.type",
            "pipeline.destination.rollRows",
            "pipeline.limits.drainTimeout",
        }));
    }

    [Test]
    public void Load_UnorderedKeyOrderedHandler_WarnsThatOrderedIsIgnored()
    {
        var json = """
            { "pipeline": { "name": "w", "source": { "type": "stdin" },
                "handlers": [
                  { "type": "parse", "format": "json", "parallelism": 2, "keyOrdered": true, "ordered": false },
                  { "type": "fields", "add": { "a": "b" }, "parallelism": 2, "ordered": false },
                  { "type": "fields", "add": { "c": "d" }, "parallelism": 2, "keyOrdered": true }
                ],
                "destination": { "type": "stdout" } } }
            """;

        var result = ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false);

        Assert.That(result.IsValid, Is.True, string.Join("\n", result.Errors));
        Assert.That(result.Warnings.Select(w => w.ToString()), Is.EqualTo(new[]
        {
            "pipeline.handlers[0].ordered: false has no effect with keyOrdered: true (a key-ordered stage keeps only each key's order, and never runs to completion); remove one of the two",
        }));
    }

    [Test]
    public void Load_CoreNatsSource_WarnsAtMostOnce()
    {
        var json = """{ "pipeline": { "name": "w", "source": { "type": "nats", "subject": "logs.>" }, "destination": { "type": "stdout" } } }""";

        var result = ConfigLoader.Load(System.Text.Encoding.UTF8.GetBytes(json), "k.json", useEnvironment: false);

        Assert.That(result.IsValid, Is.True);
        Assert.That(result.Warnings.Single().ToString(), Does.StartWith("pipeline.source.type: core NATS has no acks"));
    }
}
