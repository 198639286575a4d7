-- grain: one row per known connection (connection_id), with the names people read
-- depends_on: connections
with source as (
    select * from connections
),

renamed as (
    select
        connection_id,
        display_name,
        imodel_id,
        itwin_id
    from source
)

select * from renamed
